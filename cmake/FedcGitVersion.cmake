# Run at build time (cmake -P, from core/prog): writes OUT, the header --version prints from, with
# the git commit of SRC ("unknown" outside a git checkout or without git), VERSION and BUILD_TYPE.
# The file is rewritten only when its text changes, so that an unchanged tree rebuilds nothing.
execute_process(COMMAND git -C "${SRC}" rev-parse --short=12 HEAD
                OUTPUT_VARIABLE commit RESULT_VARIABLE rc ERROR_QUIET
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc STREQUAL "0" OR commit STREQUAL "")
  set(commit unknown)
else()
  # Tracked files changed since the commit: the binary is not exactly that commit.
  execute_process(COMMAND git -C "${SRC}" status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE dirty RESULT_VARIABLE rc ERROR_QUIET)
  if(rc STREQUAL "0" AND NOT dirty STREQUAL "")
    set(commit "${commit}-dirty")
  endif()
endif()
set(text "/* Written by cmake/FedcGitVersion.cmake at build time; do not edit. */\n")
string(APPEND text "#define FEDC_VERSION \"${VERSION}\"\n#define FEDC_GIT_COMMIT \"${commit}\"\n")
string(APPEND text "#define FEDC_BUILD_TYPE \"${BUILD_TYPE}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
