# Extra wiring for the experiment module's tests.
#
# kvlab_stub_worker: the worker loop with the stub executor, linked WITHOUT
# LibTorch (kvlab_codec is Torch-free; the adapter is kvlab_codec_torch),
# for the kill/respawn tests.
add_executable(kvlab_stub_worker
  ${CMAKE_SOURCE_DIR}/tests/helpers/stub_worker_main.cpp
  ${CMAKE_SOURCE_DIR}/src/experiment/worker.cpp
  ${CMAKE_SOURCE_DIR}/src/experiment/phase_times.cpp
  ${CMAKE_SOURCE_DIR}/src/experiment/provenance.cpp
  ${CMAKE_SOURCE_DIR}/src/experiment/stub_executor.cpp)
target_include_directories(kvlab_stub_worker PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR})
target_link_libraries(kvlab_stub_worker PRIVATE kvlab_store kvlab_codec kvlab_kernels kvlab_common
                      fmt::fmt nlohmann_json::nlohmann_json Threads::Threads)
target_compile_options(kvlab_stub_worker PRIVATE ${KVLAB_WARNINGS})

# The multi-process tests spawn `kvlab` and the stub worker.
if(TARGET experiment_reliability_test)
  add_dependencies(experiment_reliability_test kvlab kvlab_stub_worker)
  target_compile_definitions(experiment_reliability_test PRIVATE
                             KVLAB_STUB_WORKER="$<TARGET_FILE:kvlab_stub_worker>")
endif()
if(TARGET experiment_golden_test)
  add_dependencies(experiment_golden_test kvlab)
endif()
