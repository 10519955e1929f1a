# The per-architecture kernel tables (src/kernels_<arch>.cpp) of the three kernel families, each
# translation unit compiled with its own instruction-set flags, as one static library that the
# fakequant::fakequant target links. The project's build and the installed package's config
# (fakequantConfig.cmake) both call fq_link_arch_kernels, so a consumer compiles the same sources
# with the same flags, with its own compiler, through find_package or add_subdirectory alike.
#
# FQ_ARCH_KERNELS=OFF leaves them out: then the library defines FQ_NO_ARCH_KERNELS and every
# family uses the kernels the consumer's own flags allow (scalar x86-64, or one fixed -march).
option(FQ_ARCH_KERNELS "Build the per-architecture kernels (sse2, avx2, avx512) into every program \
that links fakequant::fakequant, chosen at run time" ON)

# fq_link_arch_kernels(<interface target> <folder of kernels_*.cpp> <include folder> [<options target>])
function(fq_link_arch_kernels iface src_dir include_dir)
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    return()  # detail/arch.hpp has "default" only there
  endif()
  if(NOT FQ_ARCH_KERNELS)
    target_compile_definitions(${iface} INTERFACE FQ_NO_ARCH_KERNELS)
    return()
  endif()
  set(lib fakequant_arch_kernels)
  if(NOT TARGET ${lib})
    set(flags_sse2 "")
    set(flags_avx2 -mavx2 -mfma -mf16c)
    set(flags_avx512 -mavx512f -mavx512bw -mavx512dq -mavx512cd -mavx512vl -mavx2 -mfma -mf16c)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # GCC 12 warns inside its own avx512fintrin.h under -Werror (GCC PR 105593).
      list(APPEND flags_avx512 -Wno-uninitialized -Wno-maybe-uninitialized)
    endif()
    add_library(${lib} STATIC)
    foreach(arch IN ITEMS sse2 avx2 avx512)
      add_library(${lib}_${arch} OBJECT ${src_dir}/kernels_${arch}.cpp)
      # Without contraction every instruction set gives the bits the scalar references give.
      target_compile_options(${lib}_${arch} PRIVATE ${flags_${arch}} -ffp-contract=off)
      target_compile_features(${lib}_${arch} PRIVATE cxx_std_20)
      target_include_directories(${lib}_${arch} PRIVATE ${include_dir})
      target_link_libraries(${lib}_${arch} PRIVATE xsimd ${ARGN})
      target_sources(${lib} PRIVATE $<TARGET_OBJECTS:${lib}_${arch}>)
    endforeach()
  endif()
  target_link_libraries(${iface} INTERFACE $<BUILD_INTERFACE:${lib}>)
endfunction()
