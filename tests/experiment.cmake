# Extra wiring for the experiment module's tests: the multi-process
# reliability and golden tests spawn the `kvlab` executable, so it must be
# built first.
if(TARGET experiment_reliability_test)
  add_dependencies(experiment_reliability_test kvlab)
endif()
if(TARGET experiment_golden_test)
  add_dependencies(experiment_golden_test kvlab)
endif()
