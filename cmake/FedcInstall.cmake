# The installable library and everything `cmake --install` puts in place besides the programs.
#
# libfedc.so (SONAME libfedc.so.<major>) and libfedc.a bundle the core layers, the coordinator and
# the client: the objects of the static targets fedc_nn, fedc_fl, fedc_proto, fedc_net, fedc_obs,
# fedc_coordinator and fedc_client, compiled once (position-independent) and
# used by the programs and tests exactly as before. libzmq, protobuf-c, libsodium, cJSON,
# libmicrohttpd (the coordinator's and client's --metrics-listen), libm and OpenMP are PRIVATE: no
# installed header includes theirs. core/obs's headers are internal (not installed). Installed: the
# libraries, the public headers under include/fedc/, the CMake package (find_package(fedc) gives fedc::fedc, the shared library,
# and fedc::fedc_static) and the pkg-config file fedc.pc. Left out: fedc_prog (core/prog) and the programs'
# flag parsing (fedc_coordinator_args, fedc_client_args), the wire header codec.h, which includes
# the generated fedc.pb-c.h and so protobuf-c's headers (the typed messages of msg.h and the
# transport.h that sends them are installed: neither includes it), and jsonl.h (the metrics
# writer), which includes cJSON's.
include(CMakePackageConfigHelpers)
include(CheckCCompilerFlag)
find_package(Threads REQUIRED)

set(FEDC_CORE_LIBS fedc_nn fedc_fl fedc_proto fedc_net fedc_obs fedc_coordinator fedc_client)
set(FEDC_CORE_INCLUDE_DIRS ${PROJECT_SOURCE_DIR}/core/nn/include ${PROJECT_SOURCE_DIR}/core/fl/include
    ${PROJECT_SOURCE_DIR}/core/net/include ${PROJECT_SOURCE_DIR}/coordinator/include
    ${PROJECT_SOURCE_DIR}/client/include)
# -fPIC alone lets GCC assume every global function may be interposed and stop inlining them
# within a file; fedc never relies on interposition, so the static programs keep their code.
check_c_compiler_flag(-fno-semantic-interposition FEDC_HAVE_NO_SEMANTIC_INTERPOSITION)
set(FEDC_CORE_OBJECTS "")
foreach(lib ${FEDC_CORE_LIBS})
  set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(FEDC_HAVE_NO_SEMANTIC_INTERPOSITION)
    target_compile_options(${lib} PRIVATE -fno-semantic-interposition)
  endif()
  list(APPEND FEDC_CORE_OBJECTS $<TARGET_OBJECTS:${lib}>)
endforeach()

# The target names fedc_lib and fedc_lib_static (the program is already called fedc); installed as
# libfedc.* and exported as fedc::fedc and fedc::fedc_static.
add_library(fedc_lib SHARED ${FEDC_CORE_OBJECTS})
add_library(fedc_lib_static STATIC ${FEDC_CORE_OBJECTS})
set_target_properties(fedc_lib PROPERTIES OUTPUT_NAME fedc EXPORT_NAME fedc
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
set_target_properties(fedc_lib_static PROPERTIES OUTPUT_NAME fedc EXPORT_NAME fedc_static)
foreach(t fedc_lib fedc_lib_static)
  add_dependencies(${t} ${FEDC_CORE_LIBS})
  set_target_properties(${t} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib
                                        ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
  target_include_directories(${t} PUBLIC "$<BUILD_INTERFACE:${FEDC_CORE_INCLUDE_DIRS}>"
                                         $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${t} PRIVATE PkgConfig::ZMQ PkgConfig::PROTOBUFC PkgConfig::SODIUM
                                     PkgConfig::CJSON PkgConfig::MHD m Threads::Threads)
  if(FEDC_OPENMP)
    target_link_libraries(${t} PRIVATE OpenMP::OpenMP_C)
  endif()
endforeach()
# The shared library resolves every symbol itself (a missing dependency fails here, not in the
# program that embeds it). Sanitizer runtimes are the executable's business (clang links them only
# there), so sanitized builds leave them undefined.
if(NOT (FEDC_SANITIZE OR FEDC_TSAN OR FEDC_FUZZ))
  target_link_options(fedc_lib PRIVATE LINKER:--no-undefined)
endif()
# Only the public fedc_ names are exported (cmake/fedc.map): internal fedc__ functions and the
# generated protobuf-c code are not part of the ABI.
target_link_options(fedc_lib PRIVATE LINKER:--version-script=${PROJECT_SOURCE_DIR}/cmake/fedc.map)
set_property(TARGET fedc_lib APPEND PROPERTY LINK_DEPENDS ${PROJECT_SOURCE_DIR}/cmake/fedc.map)

# Public headers: every header of the include/fedc folders but the protobuf and cJSON ones.
set(FEDC_PRIVATE_HEADERS codec.h jsonl.h)
set(FEDC_PUBLIC_HEADERS "")
foreach(dir ${FEDC_CORE_INCLUDE_DIRS})
  file(GLOB headers CONFIGURE_DEPENDS ${dir}/fedc/*.h)
  foreach(h ${headers})
    get_filename_component(name ${h} NAME)
    if(NOT name IN_LIST FEDC_PRIVATE_HEADERS)
      list(APPEND FEDC_PUBLIC_HEADERS ${h})
    endif()
  endforeach()
endforeach()

install(TARGETS fedc_lib fedc_lib_static EXPORT fedcTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${FEDC_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fedc)

set(FEDC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fedc)
install(EXPORT fedcTargets NAMESPACE fedc:: DESTINATION ${FEDC_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fedcConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fedcConfig.cmake INSTALL_DESTINATION ${FEDC_CMAKE_DIR})
# 0.x: a new minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fedcConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fedcConfig.cmake ${PROJECT_BINARY_DIR}/fedcConfigVersion.cmake
  DESTINATION ${FEDC_CMAKE_DIR})

# fedc.pc finds the prefix from its own place (${pcfiledir}), so an installed tree can be moved.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(FEDC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(FEDC_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH rel /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
  string(REGEX REPLACE "/$" "" rel "${rel}")
  set(FEDC_PC_PREFIX "\${pcfiledir}/${rel}")
  set(FEDC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(FEDC_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(FEDC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(FEDC_PC_LIBS_PRIVATE "-lm")
if(FEDC_OPENMP)
  foreach(l ${OpenMP_C_LIB_NAMES})
    string(APPEND FEDC_PC_LIBS_PRIVATE " -l${l}")
  endforeach()
endif()
if(CMAKE_THREAD_LIBS_INIT)
  string(APPEND FEDC_PC_LIBS_PRIVATE " ${CMAKE_THREAD_LIBS_INIT}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/fedc.pc.in ${PROJECT_BINARY_DIR}/fedc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fedc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
