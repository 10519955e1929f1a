// SPDX-License-Identifier: MIT
// The GGUF layer: type table, validated reader, streamed atomic writer.
#pragma once

#include "gguf/blocks.hpp"
#include "gguf/file.hpp"
#include "gguf/types.hpp"
#include "gguf/value.hpp"
#include "gguf/writer.hpp"
