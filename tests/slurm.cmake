# Slurm: the private one-node test cluster of scripts/slurm-cluster.sh runs a
# 4-task array with a %2 throttle (sbatch --array=0-3%2) and is stopped again.
# Exit code 3 from the script means no cluster can start here (Slurm/MUNGE
# not installed: scripts/install-slurm.sh); ctest reports that as skipped.
# The kvlab end-to-end test on the same kind of cluster is
# slurm_cluster_test.cpp (registered by the generic *_test.cpp rule).
add_test(NAME slurm_cluster_script_demo
         COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/slurm-cluster.sh demo)
set_tests_properties(slurm_cluster_script_demo PROPERTIES
                     LABELS slurm
                     SKIP_RETURN_CODE 3
                     TIMEOUT 180)

# The CLI and cluster tests spawn `kvlab`.
foreach(t slurm_cli_test slurm_cluster_test)
  if(TARGET ${t})
    add_dependencies(${t} kvlab)
  endif()
endforeach()
