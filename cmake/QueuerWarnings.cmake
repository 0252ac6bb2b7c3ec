# Warnings are errors in our code; third-party headers come in as system includes.
function(queuer_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 reports -Wrestrict false positives inside libstdc++'s std::string at -O2/-O3
    # (GCC bug 105329): still reported, not fatal.
    target_compile_options(${target} PRIVATE -Wno-error=restrict)
  endif()
endfunction()
