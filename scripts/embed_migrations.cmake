# Embed sql/migrations/NNNN_name.sql as a table of struct db_migration:
#   cmake -DFILES="a.sql|b.sql" -DOUT=migrations.c -P embed_migrations.cmake
# Files are taken in name order; NNNN is the version and must increase.
string(REPLACE "|" ";" files "${FILES}")
list(SORT files)
set(arrays "")
set(rows "")
set(last 0)
set(i 0)
foreach(f ${files})
  get_filename_component(name "${f}" NAME_WE)
  if(NOT name MATCHES "^([0-9][0-9][0-9][0-9])_[a-z0-9_]+$")
    message(FATAL_ERROR "migration ${f}: name it NNNN_lower_case_words.sql")
  endif()
  string(REGEX REPLACE "^0+" "" version "${CMAKE_MATCH_1}")
  if(version STREQUAL "" OR NOT version GREATER last)
    message(FATAL_ERROR "migration ${f}: versions must start at 0001 and increase")
  endif()
  set(last ${version})
  file(READ "${f}" hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND arrays "static const char m${i}[] = {${bytes} 0x00};\n")
  string(APPEND rows "    {${version}, \"${name}\", m${i}},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE "${OUT}" "/* generated from sql/migrations by scripts/embed_migrations.cmake */\n"
     "#include \"db.h\"\n${arrays}const struct db_migration db_migrations[] = {\n${rows}};\n"
     "const size_t db_nmigrations = ${i};\n")
