# Installing Aegis as a service, and the Debian package (cpack -G DEB in the build directory).
# The unit and sysusers directories are systemd's under the prefix (/usr/lib/... for /usr).

set(AEGIS_SYSTEMD_UNIT_DIR lib/systemd/system CACHE STRING "systemd unit directory, under the prefix")
set(AEGIS_SYSUSERS_DIR lib/sysusers.d CACHE STRING "sysusers.d directory, under the prefix")
install(DIRECTORY packaging/systemd/ DESTINATION ${AEGIS_SYSTEMD_UNIT_DIR} FILES_MATCHING PATTERN "*.service")
install(FILES packaging/sysusers.d/aegis.conf DESTINATION ${AEGIS_SYSUSERS_DIR})
set(AEGIS_TMPFILES_DIR lib/tmpfiles.d CACHE STRING "tmpfiles.d directory, under the prefix")
install(FILES packaging/tmpfiles.d/aegis.conf DESTINATION ${AEGIS_TMPFILES_DIR})
# Outside the prefix, as logrotate reads it; a conffile in the package.
set(AEGIS_LOGROTATE_DIR /etc/logrotate.d CACHE STRING "logrotate's directory")
install(FILES packaging/logrotate/aegis-connect DESTINATION ${AEGIS_LOGROTATE_DIR})
install(FILES packaging/config/gateway.conf packaging/config/connect.conf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(CPACK_PACKAGE_NAME aegis)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Aegis maintainers <aegis@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "authenticated, encrypted, durable messaging for a fleet of hosts")
set(CPACK_PACKAGE_DESCRIPTION "Aegis gives a fleet of hosts and the services that manage them one\n\
authenticated, encrypted, durable message channel over WebSocket, driven from the shell:\n\
the broker (aegis-connect), the gateway (aegis-gateway), aegis-send, aegis-sub, aegis-queue,\n\
aegis-stat and aegis-keygen, with their systemd units.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The C++ runtime, fmt and Boost.Program_options are linked in; these are the shared libraries
# left (Debian 12's names).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.34), libsodium23, libssl3, libsqlite3-0, libsystemd0")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
