# fedc_add_test(NAME SOURCES a.c [b.c] LIBS libs... LABEL unit [TIMEOUT s] [ARGS ...])
# One executable per test file, registered with CTest with a timeout and a label.
function(fedc_add_test name)
  cmake_parse_arguments(T "" "LABEL;TIMEOUT" "SOURCES;LIBS;ARGS" ${ARGN})
  if(NOT T_LABEL)
    message(FATAL_ERROR "fedc_add_test(${name}): LABEL is required")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  target_compile_options(${name} PRIVATE ${FEDC_WARNINGS})
  target_compile_definitions(${name} PRIVATE FEDC_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             FEDC_BINARY_DIR="${PROJECT_BINARY_DIR}")
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  # ctest -j runs several OpenMP programs at once on few cores; spinning waits then cost a whole
  # scheduler time slice per barrier, so tests wait passively. SOURCE_DATE_EPOCH pins the
  # creation time in model cards (core/fl card.c), so that tests can compare the model files of
  # two runs byte for byte; test_card checks the time without it.
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABEL}" TIMEOUT ${T_TIMEOUT}
                                          ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE;SOURCE_DATE_EPOCH=1767225600")
endfunction()
