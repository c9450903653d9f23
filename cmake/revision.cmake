# Writes OUT (a header defining AEGIS_REVISION) from `git describe` of SOURCE_DIR, touching it
# only when the revision changed, so that a new commit recompiles one file. Run at build time:
#   cmake -DSOURCE_DIR=... -DOUT=... -P cmake/revision.cmake
execute_process(COMMAND git -C "${SOURCE_DIR}" describe --always --dirty --abbrev=12
  OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
if(failed OR revision STREQUAL "")
  set(revision "unknown")
endif()
set(text "#pragma once\n#define AEGIS_REVISION \"${revision}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
