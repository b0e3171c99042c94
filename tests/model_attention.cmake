# model_attention_cli_test runs the kvlab executable: build it first.
if(TARGET model_attention_cli_test AND TARGET kvlab)
  add_dependencies(model_attention_cli_test kvlab)
endif()
