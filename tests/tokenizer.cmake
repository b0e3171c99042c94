# Tokenizer / HF host tests (owner: tokenizer).
#
# ICU (libicu-dev) provides the Unicode normalization forms, character
# properties and the regex engine behind src/host/tokenizer_unicode.cpp.
# INTERIM: this link line belongs in src/host/CMakeLists.txt (requested from
# its owner); it is here so that the tree links meanwhile. It is harmless to
# keep both.
find_package(ICU REQUIRED COMPONENTS uc i18n)
if(TARGET kvlab_host)
  get_target_property(_kvlab_host_type kvlab_host TYPE)
  if(_kvlab_host_type STREQUAL "INTERFACE_LIBRARY")
    target_link_libraries(kvlab_host INTERFACE ICU::uc ICU::i18n)
  else()
    target_link_libraries(kvlab_host PUBLIC ICU::uc ICU::i18n)
  endif()
endif()
