# ctest plugin_template_out_of_tree: install the plugin SDK component into a throwaway prefix,
# build docs/plugin-template against it as a plugin author would, and load the result.
# Inputs: QUEUER_BUILD_DIR, TEMPLATE_DIR, WORK_DIR, LOAD_TOOL, CMAKE_GENERATOR.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

run(${CMAKE_COMMAND} --install ${QUEUER_BUILD_DIR} --component plugin-sdk --prefix ${prefix})
foreach(f include/queuer/plugin.h include/queuer/plugin.hpp share/pkgconfig/queuer-plugin-sdk.pc
    share/pkgconfig/queuer-plugin-sdk-cxx.pc)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "the SDK install lacks ${f}")
  endif()
endforeach()
file(GLOB config ${prefix}/share/cmake/QueuerPluginSDK/QueuerPluginSDKConfig.cmake)
if(NOT config)
  message(FATAL_ERROR "the SDK install lacks QueuerPluginSDKConfig.cmake")
endif()

# pkg-config must point into the prefix it was installed to.
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  set(ENV{PKG_CONFIG_PATH} ${prefix}/share/pkgconfig)
  run(${PKG_CONFIG} --cflags queuer-plugin-sdk)
  if(NOT run_out MATCHES "-I")
    message(FATAL_ERROR "pkg-config --cflags queuer-plugin-sdk gave: ${run_out}")
  endif()
  string(STRIP "${run_out}" cflags)
  string(REGEX REPLACE "^-I" "" incdir "${cflags}")
  if(NOT EXISTS ${incdir}/queuer/plugin.h)
    message(FATAL_ERROR "pkg-config include dir ${incdir} has no queuer/plugin.h")
  endif()
endif()

# The C++ pkg-config module adds C++17 and RapidJSON; build the template's source with it alone.
if(PKG_CONFIG)
  run(${PKG_CONFIG} --cflags queuer-plugin-sdk-cxx)
  if(NOT run_out MATCHES "-std=c\\+\\+17" OR NOT run_out MATCHES "-I")
    message(FATAL_ERROR "pkg-config --cflags queuer-plugin-sdk-cxx gave: ${run_out}")
  endif()
  separate_arguments(cxxflags UNIX_COMMAND "${run_out}")
  find_program(CXX NAMES c++ g++)
  run(${CXX} -O2 -shared -fPIC -Wall -Werror ${cxxflags} -o ${WORK_DIR}/libhello_pc.so
    ${TEMPLATE_DIR}/hello.cpp)
  run(${LOAD_TOOL} ${WORK_DIR}/libhello_pc.so --run hello "[\"pc\"]")
  if(NOT run_out MATCHES "result: \\[\"hello, pc\"\\]")
    message(FATAL_ERROR "the plugin built with pkg-config did not run:\n${run_out}")
  endif()
endif()

# Build the template out of tree with the installed package only, as a plugin author would:
# without a build type, which the template then sets to Release (an optimised plugin).
run(${CMAKE_COMMAND} -S ${TEMPLATE_DIR} -B ${WORK_DIR}/build -G ${CMAKE_GENERATOR}
  -DCMAKE_PREFIX_PATH=${prefix})
file(STRINGS ${WORK_DIR}/build/CMakeCache.txt build_type REGEX "^CMAKE_BUILD_TYPE:")
if(NOT build_type MATCHES "=Release$")
  message(FATAL_ERROR "the template did not default to a Release build: ${build_type}")
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
set(plugin ${WORK_DIR}/build/libhello.so)
if(NOT EXISTS ${plugin})
  message(FATAL_ERROR "the template build did not produce ${plugin}")
endif()

# Load it with the host loader and run its task.
run(${LOAD_TOOL} ${plugin} --run hello "[\"world\"]")
message(STATUS "${run_out}")
if(NOT run_out MATCHES "tasks: hello" OR NOT run_out MATCHES "result: \\[\"hello, world\"\\]")
  message(FATAL_ERROR "unexpected output of the loaded template plugin:\n${run_out}")
endif()
