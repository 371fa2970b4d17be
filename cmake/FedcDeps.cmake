# Finds fedc's dependencies (Debian packages only) and names the package to install when one is
# missing. scripts/install-deps.sh installs all of them.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install the Debian package 'pkg-config' "
                      "(or run scripts/install-deps.sh)")
endif()

function(fedc_require_pc target module debpkg)
  pkg_check_modules(${target} IMPORTED_TARGET ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "${module} not found: install the Debian package '${debpkg}' "
                        "(or run scripts/install-deps.sh)")
  endif()
endfunction()

fedc_require_pc(ZMQ libzmq libzmq3-dev)
fedc_require_pc(PROTOBUFC libprotobuf-c libprotobuf-c-dev)
fedc_require_pc(SODIUM libsodium libsodium-dev)
# cJSON builds and prints the JSON-lines metrics files (core/fl/src/jsonl.c).
fedc_require_pc(CJSON libcjson libcjson-dev)
# libinih reads the programs' --config INI files (core/prog options.c).
fedc_require_pc(INIH inih libinih-dev)
# libmicrohttpd serves --metrics-listen (Prometheus metrics, /healthz, /readyz, the status page)
# on a thread of its own (core/obs/src/httpd.c).
fedc_require_pc(MHD libmicrohttpd libmicrohttpd-dev)
if(FEDC_BUILD_TESTS)
  fedc_require_pc(CMOCKA cmocka libcmocka-dev)
endif()
find_program(PROTOC_C NAMES protoc-c)
if(NOT PROTOC_C)
  message(FATAL_ERROR "protoc-c not found: install the Debian package 'protobuf-c-compiler' "
                      "(or run scripts/install-deps.sh)")
endif()

if(FEDC_OPENMP)
  find_package(OpenMP REQUIRED COMPONENTS C)
endif()
find_library(MATH_LIBRARY m REQUIRED)
