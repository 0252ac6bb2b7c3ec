# Debian packages with CPack (scripts/package runs it; docs/deploy.md says how to install them):
#   queuerd      queuerd, queuerd-task-runner, queuerctl, the example plugin, the systemd unit,
#                /etc/queuerd/queuerd.yaml (a conffile), man pages, bash completion, docs
#   queuerd-dev  the plugin SDK: headers, CMake package, pkg-config files (architecture all)
# Depends of queuerd come from dpkg-shlibdeps. Configure with CMAKE_INSTALL_PREFIX=/usr and
# QUEUER_CONFIG_INSTALL_DIR=/etc/queuerd for packages that follow the Debian layout.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME queuerd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "queuerd")
set(CPACK_PACKAGE_CONTACT "queuerd maintainers <maintainers@queuerd.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_SOURCE_DIR}/dist)
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_SOURCE_DIR}/dist)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL queuerd plugin-sdk)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://queuerd.invalid/")

set(CPACK_DEBIAN_QUEUERD_PACKAGE_NAME queuerd)
set(CPACK_DEBIAN_QUEUERD_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_QUEUERD_PACKAGE_SHLIBDEPS ON)
# The example plugin's time zones come from the system tz database.
set(CPACK_DEBIAN_QUEUERD_PACKAGE_RECOMMENDS "tzdata")
set(CPACK_DEBIAN_QUEUERD_PACKAGE_SUGGESTS "postgresql (>= 15)")
set(CPACK_COMPONENT_QUEUERD_DESCRIPTION "job queue daemon on PostgreSQL
 queuerd runs jobs from a queue kept in PostgreSQL: task plugins (.so) loaded
 through a stable C ABI, crash isolation, LISTEN/NOTIFY wake-ups, a master
 elected through the database, systemd integration (Type=notify, watchdog,
 credentials). This package has the daemon, its task runner, the queuerctl
 command-line client, an example plugin, the systemd unit and the man pages.")

set(CPACK_DEBIAN_PLUGIN-SDK_PACKAGE_NAME queuerd-dev)
set(CPACK_DEBIAN_PLUGIN-SDK_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PLUGIN-SDK_PACKAGE_ARCHITECTURE all)
# The C ABI needs nothing; the C++ layer (queuer/plugin.hpp) needs RapidJSON.
set(CPACK_DEBIAN_PLUGIN-SDK_PACKAGE_DEPENDS "rapidjson-dev")
set(CPACK_DEBIAN_PLUGIN-SDK_PACKAGE_RECOMMENDS "pkg-config, cmake")
set(CPACK_COMPONENT_PLUGIN-SDK_DESCRIPTION "plugin SDK for queuerd task plugins
 The C ABI (queuer/plugin.h), the header-only C++17 layer (queuer/plugin.hpp),
 a CMake package (find_package(QueuerPluginSDK)) and pkg-config files
 (queuer-plugin-sdk for C, queuer-plugin-sdk-cxx for C++) to build task plugins
 for queuerd out of its source tree.")

# Maintainer scripts and the conffile list of the queuerd package.
set(CPACK_DEBIAN_QUEUERD_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
# /etc/queuerd/queuerd.yaml is a conffile: dpkg keeps the operator's edits across upgrades.
if(IS_ABSOLUTE "${QUEUER_CONFIG_INSTALL_DIR}")
  file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "${QUEUER_FULL_CONFIG_DIR}/queuerd.yaml\n")
  list(APPEND CPACK_DEBIAN_QUEUERD_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/debian/conffiles)
endif()

include(CPack)
