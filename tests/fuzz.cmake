# Fuzzing of the safetensors reader (owner: model). See tests/fuzz/.
#
# io_safetensors_fuzz: the libFuzzer-style target with the stand-alone
# replay/mutation driver, built with the project compiler and, unless
# KVLAB_FUZZ_SANITIZE=OFF, AddressSanitizer + UBSan. Its sources are compiled
# in (not linked from kvlab_io) so that the reader itself is instrumented.
# ctest runs it for a few seconds over tests/fuzz/corpus/safetensors.
#
# io_safetensors_libfuzzer (not built by default; needs clang++ with
# libFuzzer): `cmake --build BUILD --target io_safetensors_libfuzzer`, then
# `mkdir -p /tmp/st-corpus && BUILD/io_safetensors_libfuzzer -max_total_time=60 /tmp/st-corpus
# tests/fuzz/corpus/safetensors` (libFuzzer writes new inputs into the FIRST directory).
option(KVLAB_FUZZ_SANITIZE "Build the fuzz driver with ASan/UBSan" ON)
set(KVLAB_FUZZ_SOURCES
    ${CMAKE_SOURCE_DIR}/src/io/safetensors.cpp
    ${CMAKE_SOURCE_DIR}/src/common/error.cpp
    ${CMAKE_SOURCE_DIR}/kernels/fp_formats.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/safetensors_fuzz.cpp)
add_executable(io_safetensors_fuzz ${KVLAB_FUZZ_SOURCES} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay_main.cpp)
target_include_directories(io_safetensors_fuzz PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
target_link_libraries(io_safetensors_fuzz PRIVATE fmt::fmt nlohmann_json::nlohmann_json)
if(KVLAB_FUZZ_SANITIZE)
  target_compile_options(io_safetensors_fuzz PRIVATE -fsanitize=address,undefined -fno-sanitize-recover=undefined
                         -fno-omit-frame-pointer -g)
  target_link_options(io_safetensors_fuzz PRIVATE -fsanitize=address,undefined)
endif()
add_test(NAME io_safetensors_fuzz_short
         COMMAND io_safetensors_fuzz --seconds 8 --seed 1 ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/safetensors)
set_tests_properties(io_safetensors_fuzz_short PROPERTIES LABELS io TIMEOUT 120
                     WORKING_DIRECTORY ${CMAKE_BINARY_DIR})

find_program(KVLAB_CLANGXX clang++)
if(KVLAB_CLANGXX)
  add_custom_target(io_safetensors_libfuzzer
    COMMAND ${KVLAB_CLANGXX} -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined
            -I${CMAKE_SOURCE_DIR}/src -I${CMAKE_SOURCE_DIR} ${KVLAB_FUZZ_SOURCES} -lfmt
            -o ${CMAKE_BINARY_DIR}/io_safetensors_libfuzzer
    COMMENT "Building the libFuzzer safetensors target with clang++"
    VERBATIM)
endif()
