# What `cmake --install` puts where, besides the targets (which install themselves):
#   bin/queuerd, bin/queuerd-task-runner, bin/queuerctl      (CMAKE_INSTALL_BINDIR)
#   lib/queuerd/plugins/libqueuer_examples.so                 (QUEUER_PLUGIN_INSTALL_DIR)
#   QUEUER_CONFIG_INSTALL_DIR/queuerd.yaml, credentials/      (default etc/queuerd)
#   QUEUER_SYSTEMD_UNIT_DIR/queuerd.service                   (default lib/systemd/system)
#   share/man/man{1,5,8}/...gz                                (when pandoc is found)
#   share/bash-completion/completions/queuerctl
#   share/doc/queuerd/                                        (README and docs/*.md)
#
# Every destination is relative to the install prefix unless set to an absolute path, so that
# `cmake --install BUILD --prefix P` writes nothing outside P. Debian packages (scripts/package)
# use the prefix /usr and QUEUER_CONFIG_INSTALL_DIR=/etc/queuerd.
#
# The installed unit and example configuration name the installed files (the binary, the
# configuration, the example plugin) for the prefix given at configure time, so that they agree
# with each other for any prefix: /usr/bin/queuerd, /etc/queuerd/queuerd.yaml and
# /usr/lib/queuerd/plugins/ in the packages.

set(QUEUER_CONFIG_INSTALL_DIR "${CMAKE_INSTALL_SYSCONFDIR}/queuerd" CACHE STRING
  "Directory for queuerd.yaml and credentials/ (relative to the prefix, or absolute)")
set(QUEUER_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
  "Directory for queuerd.service (relative to the prefix, or absolute)")
set(QUEUER_MAN_PAGES AUTO CACHE STRING "Build man pages with pandoc: AUTO (when found), ON, OFF")
set_property(CACHE QUEUER_MAN_PAGES PROPERTY STRINGS AUTO ON OFF)

function(queuer_full_path out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
queuer_full_path(QUEUER_FULL_CONFIG_DIR "${QUEUER_CONFIG_INSTALL_DIR}")
queuer_full_path(QUEUER_FULL_PLUGIN_DIR "${QUEUER_PLUGIN_INSTALL_DIR}")

# The sources name the packaged layout; rewrite it for this prefix.
set(_gen ${CMAKE_BINARY_DIR}/install)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/config/queuerd.yaml ${PROJECT_SOURCE_DIR}/systemd/queuerd.service)
file(READ ${PROJECT_SOURCE_DIR}/config/queuerd.yaml _text)
string(REPLACE "/usr/lib/queuerd/plugins" "${QUEUER_FULL_PLUGIN_DIR}" _text "${_text}")
string(REPLACE "/etc/queuerd" "${QUEUER_FULL_CONFIG_DIR}" _text "${_text}")
file(WRITE ${_gen}/queuerd.yaml "${_text}")
file(READ ${PROJECT_SOURCE_DIR}/systemd/queuerd.service _text)
string(REPLACE "/usr/bin/queuerd" "${CMAKE_INSTALL_FULL_BINDIR}/queuerd" _text "${_text}")
string(REPLACE "/etc/queuerd" "${QUEUER_FULL_CONFIG_DIR}" _text "${_text}")
file(WRITE ${_gen}/queuerd.service "${_text}")

install(FILES ${_gen}/queuerd.yaml DESTINATION ${QUEUER_CONFIG_INSTALL_DIR})
# Root-owned secret files go here (db-password, encryption-key); only root may look inside.
install(DIRECTORY DESTINATION ${QUEUER_CONFIG_INSTALL_DIR}/credentials
  DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
install(FILES ${_gen}/queuerd.service DESTINATION ${QUEUER_SYSTEMD_UNIT_DIR})
install(FILES ${PROJECT_SOURCE_DIR}/cli/completion/queuerctl.bash
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME queuerctl)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/configuration.md
  ${PROJECT_SOURCE_DIR}/docs/deploy.md ${PROJECT_SOURCE_DIR}/docs/cluster.md
  ${PROJECT_SOURCE_DIR}/docs/queuerctl.md ${PROJECT_SOURCE_DIR}/docs/plugin-guide.md
  ${PROJECT_SOURCE_DIR}/docs/compatibility.md ${PROJECT_SOURCE_DIR}/docs/web.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Man pages: Markdown through pandoc (docs/man/README.md). Each page is its own header and
# trailer around a document of docs/ where there is one, so the text is written once.
set(QUEUER_MAN_SOURCES_queuerd.8 docs/man/queuerd.8.md)
set(QUEUER_MAN_SOURCES_queuerctl.1 docs/man/queuerctl.1.md docs/queuerctl.md
  docs/man/queuerctl.1.trailer.md)
set(QUEUER_MAN_SOURCES_queuerd.yaml.5 docs/man/queuerd.yaml.5.md docs/configuration.md
  docs/man/queuerd.yaml.5.trailer.md)
set(QUEUER_MAN_PAGE_NAMES queuerd.8 queuerctl.1 queuerd.yaml.5)

if(NOT QUEUER_MAN_PAGES STREQUAL "OFF")
  find_program(PANDOC_EXECUTABLE pandoc)
  find_program(GZIP_EXECUTABLE gzip)
  if(NOT PANDOC_EXECUTABLE OR NOT GZIP_EXECUTABLE)
    if(QUEUER_MAN_PAGES STREQUAL "ON")
      message(FATAL_ERROR "QUEUER_MAN_PAGES=ON but pandoc or gzip was not found "
        "(Debian: apt-get install pandoc)")
    endif()
    message(STATUS "pandoc not found: no man pages (install pandoc, or QUEUER_MAN_PAGES=OFF)")
  else()
    set(_outs)
    foreach(page IN LISTS QUEUER_MAN_PAGE_NAMES)
      string(REGEX MATCH "[0-9]$" section ${page})
      string(REGEX REPLACE "\\.[0-9]$" "" name ${page})
      string(TOUPPER ${name} title)
      set(inputs)
      foreach(src IN LISTS QUEUER_MAN_SOURCES_${page})
        list(APPEND inputs ${PROJECT_SOURCE_DIR}/${src})
      endforeach()
      set(out ${CMAKE_BINARY_DIR}/man/${page})
      add_custom_command(OUTPUT ${out}.gz
        COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
        COMMAND ${PANDOC_EXECUTABLE} --standalone --from markdown-smart --to man
          --lua-filter ${PROJECT_SOURCE_DIR}/docs/man/man.lua
          --metadata title=${title} --metadata section=${section}
          "--metadata=header:queuerd manual"
          "--metadata=footer:queuerd ${PROJECT_VERSION}"
          --output ${out} ${inputs}
        COMMAND ${GZIP_EXECUTABLE} -9 -n -f ${out}
        DEPENDS ${inputs} ${PROJECT_SOURCE_DIR}/docs/man/man.lua
        COMMENT "man page ${page}"
        VERBATIM)
      list(APPEND _outs ${out}.gz)
      install(FILES ${out}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
    endforeach()
    add_custom_target(man_pages ALL DEPENDS ${_outs})
  endif()
endif()
