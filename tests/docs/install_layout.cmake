# ctest install.inside_prefix: `cmake --install BUILD --prefix P` writes nothing outside P, puts
# the configuration, the unit and the completion where docs say, and the installed unit and
# configuration name the files installed for the configured prefix. Also scores the unit with
# systemd-analyze when it is there (2.0 or better).
# Inputs: BUILD_DIR, WORK_DIR, SOURCE_DIR, INSTALL_PREFIX (the configured CMAKE_INSTALL_PREFIX).
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

file(STRINGS ${BUILD_DIR}/install_manifest.txt manifest)
list(LENGTH manifest n)
if(n LESS 10)
  message(FATAL_ERROR "the install manifest lists only ${n} files")
endif()
foreach(f IN LISTS manifest)
  string(FIND "${f}" "${prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "cmake --install --prefix ${prefix} wrote ${f}, outside the prefix")
  endif()
endforeach()

foreach(f bin/queuerd bin/queuerd-task-runner bin/queuerctl etc/queuerd/queuerd.yaml
    lib/systemd/system/queuerd.service lib/queuerd/plugins/libqueuer_examples.so
    share/bash-completion/completions/queuerctl share/doc/queuerd/deploy.md
    include/queuer/plugin.h share/pkgconfig/queuer-plugin-sdk-cxx.pc)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "cmake --install did not install ${f}")
  endif()
endforeach()
if(NOT IS_DIRECTORY ${prefix}/etc/queuerd/credentials)
  message(FATAL_ERROR "cmake --install did not make etc/queuerd/credentials")
endif()

# The unit and the configuration name the configured prefix's files.
file(READ ${prefix}/lib/systemd/system/queuerd.service unit)
set(want "ExecStart=${INSTALL_PREFIX}/bin/queuerd --config ${INSTALL_PREFIX}/etc/queuerd/queuerd.yaml")
string(FIND "${unit}" "${want}\n" at)
if(at LESS 0)
  message(FATAL_ERROR "the installed unit lacks \"${want}\":\n${unit}")
endif()
file(READ ${prefix}/etc/queuerd/queuerd.yaml cfg)
string(FIND "${cfg}" "- path: ${INSTALL_PREFIX}/lib/queuerd/plugins/libqueuer_examples.so\n" at)
if(at LESS 0)
  message(FATAL_ERROR "the installed configuration does not name the installed plugin:\n${cfg}")
endif()

find_program(SYSTEMD_ANALYZE systemd-analyze)
if(SYSTEMD_ANALYZE)
  execute_process(COMMAND ${SYSTEMD_ANALYZE} security --offline=yes --threshold=20
      ${SOURCE_DIR}/systemd/queuerd.service
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "systemd-analyze security scores the unit above 2.0:\n${out}\n${err}")
  endif()
  string(REGEX MATCH "Overall exposure level[^\n]*" score "${out}")
  message(STATUS "${score}")
endif()
