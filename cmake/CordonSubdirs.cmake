# cordon_add_subdirectories(): add every direct subfolder that has a CMakeLists.txt,
# so components can add their own test/bench/fuzz folders without editing a shared list.
# Folders named in the arguments are skipped (the caller added them first).
function(cordon_add_subdirectories)
  set(skip ${ARGN})
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child ${children})
    if(child IN_LIST skip)
      continue()
    endif()
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${child} AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${child}/CMakeLists.txt)
      add_subdirectory(${child})
    endif()
  endforeach()
endfunction()
