# Embed sql/statements/NAME.sql as the text of STMT_NAME (include/db.h):
#   cmake -DFILES="a.sql|b.sql" -DOUT=statements.c -DTMP=dir -P embed_statements.cmake
# A file whose name matches no enum entry fails the compile; an entry
# without a file is NULL, which the pool refuses to prepare (and the
# statements test names).
string(REPLACE "|" ";" files "${FILES}")
list(SORT files)
set(arrays "")
set(rows "")
set(names "")
function(embed_text text symbol)
  file(WRITE "${TMP}/${symbol}.sql" "${text}")
  file(READ "${TMP}/${symbol}.sql" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  set(arrays "${arrays}static const char ${symbol}[] = {${bytes} 0x00};\n" PARENT_SCOPE)
endfunction()
foreach(f ${files})
  get_filename_component(name "${f}" NAME_WE)
  if(NOT name MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "statement ${f}: name it lower_case_words.sql")
  endif()
  string(TOUPPER "${name}" upper)
  file(READ "${f}" text)
  embed_text("${text}" "s_${name}")
  string(APPEND rows "    [STMT_${upper}] = s_${name},\n")
  string(APPEND names "    [STMT_${upper}] = \"${name}\",\n")
endforeach()
file(WRITE "${OUT}" "/* generated from sql/statements by scripts/embed_statements.cmake */\n"
     "#include \"statements.h\"\n${arrays}"
     "const char *const db_statement_text[STMT_COUNT] = {\n${rows}};\n"
     "const char *const db_statement_names[STMT_COUNT] = {\n${names}};\n")
