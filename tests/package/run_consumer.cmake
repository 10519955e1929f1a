# A consumer project outside the tree (tests/package/consumer) built against fakequant with nothing
# but its CMake target, then run beside the fakequant program on the same model and text:
#   MODE=find_package      the project installed into a scratch prefix, found with find_package
#   MODE=add_subdirectory  the project's source folder added with add_subdirectory
# Fails unless every kernel family the consumer uses is the CPU's best (read from /proc/cpuinfo,
# not from the library) and its quantized model, statistics JSON and KL-divergence base (every
# scored log-probability) equal the program's byte for byte.
unset(ENV{FQ_FORCE_ARCH})
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
macro(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endmacro()

set(configure -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  list(APPEND configure -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  list(APPEND configure -DFAKEQUANT_SOURCE_DIR=${PROJECT_DIR})
endif()
run(${CMAKE_COMMAND} ${configure})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)

# tl-mini and the plan's text when ../shared is there; otherwise a synthesized model and README.
set(model ${SHARED_DIR}/testdata/models/tl-mini-f32.gguf)
set(text ${SHARED_DIR}/testdata/text/wiki.test.small.raw)
if(NOT EXISTS ${model} OR NOT EXISTS ${text})
  set(model ${WORK_DIR}/tiny.gguf)
  set(text ${PROJECT_DIR}/README.md)
  run(${PROGRAM} synth --preset tiny ${model})
endif()

set(c ${WORK_DIR}/consumer)
set(p ${WORK_DIR}/program)
run(${WORK_DIR}/build/consumer ${model} ${text} ${c})
message(STATUS "consumer (${MODE}): ${out}")

file(READ /proc/cpuinfo cpuinfo)
set(best sse2)
if(cpuinfo MATCHES " avx2" AND cpuinfo MATCHES " fma" AND cpuinfo MATCHES " f16c")
  set(best avx2)
  if(cpuinfo MATCHES " avx512f" AND cpuinfo MATCHES " avx512bw" AND cpuinfo MATCHES " avx512dq"
     AND cpuinfo MATCHES " avx512cd" AND cpuinfo MATCHES " avx512vl")
    set(best avx512)
  endif()
endif()
if(NOT out MATCHES "kernels: format [^,]*${best}[^,]*, stats [^,]*${best}[^,]*, llama [^\n]*${best}")
  message(FATAL_ERROR "the consumer did not choose this CPU's best kernels (${best}): ${out}")
endif()

run(${PROGRAM} quantize ${model} ${p}.q.gguf --tensors blk.*.ffn_norm.weight --format bf16)
run(${PROGRAM} diff ${model} ${c}.q.gguf --output ${p}.diff.json)
run(${PROGRAM} perplexity -m ${model} -f ${text} -c 128 -b 128 --chunks 2
    --kl-divergence-base ${p}.kld)
foreach(ext q.gguf diff.json kld)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${c}.${ext} ${p}.${ext}
                  RESULT_VARIABLE differ)
  if(differ)
    message(FATAL_ERROR "the consumer's ${ext} differs from the program's (${c}.${ext}, ${p}.${ext})")
  endif()
endforeach()
message(STATUS "consumer (${MODE}): kernels ${best}; model, statistics and log-probabilities "
               "equal the program's byte for byte")
