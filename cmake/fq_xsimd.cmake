# Debian's libxsimd-dev 8.1 exports its target with INTERFACE_LINK_LIBRARIES "xtl" but never finds
# xtl, so linking fails with "cannot find -lxtl". An empty imported target stands in for it.
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
endif()
find_package(xsimd 8.1 REQUIRED)
