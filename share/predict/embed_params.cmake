# embed_params.cmake — writes the length predictor's default parameter file (IN) as a C string
# definition (OUT), so pred_model_default() needs no file at run time. Run by the build
# (see CMakeLists.txt) whenever the parameter file changes.
file(READ "${IN}" text)
string(REPLACE "\\" "\\\\" text "${text}")
string(REPLACE "\"" "\\\"" text "${text}")
string(REPLACE "\n" "\\n\"\n    \"" text "${text}")
file(WRITE "${OUT}.tmp"
  "/* generated from share/predict/default_params.txt by share/predict/embed_params.cmake */\n"
  "const char pred_default_params_text[] =\n    \"${text}\";\n")
file(RENAME "${OUT}.tmp" "${OUT}")
