# Tokenizer / HF host tests (owner: tokenizer).
#
# ICU (libicu-dev) provides the Unicode normalization forms, character
# properties and the regex engine behind src/host/tokenizer_unicode.cpp;
# src/host/CMakeLists.txt links it. Nothing extra to wire here.
