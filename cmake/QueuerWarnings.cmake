# Warnings are errors in our code; third-party headers come in as system includes.
function(queuer_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
endfunction()
