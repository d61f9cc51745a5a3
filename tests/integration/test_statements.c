/* Every statement in sql/statements/ returns the columns include/
 * statements.h declares for it: their count, names and type OIDs, read
 * with PQdescribePrepared from a database the server itself migrated. A
 * column moved, renamed or retyped in a .sql file (or in a migration's
 * function) fails here, not as a wrong answer at run time. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "statements.h"
#include "strategy.h"

static int setup(void **state)
{
    return fixture_start(state, NULL);
}

static int teardown(void **state)
{
    return fixture_stop(state);
}

/* Prepare stmt on db under name; its description (caller PQclear()s it). */
static PGresult *describe(PGconn *db, enum db_statement stmt, const char *name)
{
    const char *sql = db_statement_sql(stmt);
    if (!sql)
        fail_msg("statement %d has no sql/statements file", (int)stmt);
    PGresult *res = PQprepare(db, name, sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s.sql does not prepare: %s", db_statement_names[stmt],
                 PQresultErrorMessage(res));
    PQclear(res);
    res = PQdescribePrepared(db, name);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    return res;
}

static int check_columns(enum db_statement stmt, const PGresult *res)
{
    int n, wrong = 0;
    const struct db_column *cols = db_statement_columns(stmt, &n);
    const char *file = db_statement_names[stmt];
    if (PQnfields(res) != n) {
        print_error("%s.sql returns %d columns, statements.h declares %d\n", file, PQnfields(res),
                    n);
        return 1;
    }
    for (int c = 0; c < n; c++) {
        if (strcmp(PQfname(res, c), cols[c].name) != 0 || PQftype(res, c) != cols[c].type) {
            print_error("%s.sql column %d is %s (type %u), statements.h declares %s (type %u)\n",
                        file, c, PQfname(res, c), PQftype(res, c), cols[c].name, cols[c].type);
            wrong++;
        }
    }
    return wrong;
}

static void every_statement_returns_its_declared_columns(void **state)
{
    struct fixture *f = *state;
    int wrong = 0;
    for (int i = 0; i < STMT_COUNT; i++) {
        char name[24];
        snprintf(name, sizeof(name), "described_%d", i);
        PGresult *res = describe(f->db, (enum db_statement)i, name);
        wrong += check_columns((enum db_statement)i, res);
        PQclear(res);
    }
    assert_int_equal(wrong, 0);
}

/* A decoder refuses a result that does not have its statement's columns
 * rather than read the wrong ones. */
static void decoders_refuse_other_shapes(void **state)
{
    struct fixture *f = *state;
    PGresult *res = PQexec(f->db, "SELECT 1::int8 AS id, 'a' AS name, 'b' AS email");
    struct user_row u;
    struct grant_row g;
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(user_row_decode(res, 0, &u), -1);
    assert_int_equal(grant_row_decode(STMT_RESERVE_BATCH, res, 0, &g), -1);
    assert_int_equal(grant_row_decode(STMT_USER_GET, res, 0, &g), -1);
    PQclear(res);
    res = PQexec(f->db, "SELECT 7::int8, 'Ada', 'ada@example.com', 1000::int8");
    assert_int_equal(user_row_decode(res, 1, &u), -1); /* no such row */
    assert_int_equal(user_row_decode(res, 0, &u), 0);
    assert_int_equal(u.id, 7);
    assert_string_equal(u.email, "ada@example.com");
    assert_int_equal(u.created_at_ms, 1000);
    PQclear(res);
}

/* Literals of the reserving statements and functions that are no outcome.
 * A new literal there is either a word of the outcome table or one of
 * these: the test makes whoever adds it say which. */
static const char *const not_outcomes[] = { "fallback", "grant", "lock_timeout", "off" };

static bool listed(const char *word)
{
    for (size_t i = 0; i < sizeof(not_outcomes) / sizeof(not_outcomes[0]); i++)
        if (strcmp(word, not_outcomes[i]) == 0)
            return true;
    return false;
}

/* The lower-case literals ('sold_out') of SQL text outside its comments
 * that are neither in the outcome table (grant_word_parse) nor listed,
 * each reported. */
static int unknown_words(const char *where, const char *sql)
{
    int unknown = 0;
    for (const char *p = sql; *p;) {
        if (p[0] == '-' && p[1] == '-') { /* a comment, to its end of line */
            p += strcspn(p, "\n");
            continue;
        }
        if (*p != '\'') {
            p++;
            continue;
        }
        const char *end = strchr(p + 1, '\'');
        if (!end)
            break;
        size_t len = (size_t)(end - p - 1);
        char word[64];
        enum grant_word kind;
        enum reservation_outcome out;
        if (len > 0 && len < sizeof(word) && strspn(p + 1, "abcdefghijklmnopqrstuvwxyz_") == len) {
            memcpy(word, p + 1, len);
            word[len] = '\0';
            if (grant_word_parse(word, &kind, &out) != 0 && !listed(word)) {
                print_error("%s answers '%s', which is not in the outcome table\n", where, word);
                unknown++;
            }
        }
        p = end + 1;
    }
    return unknown;
}

/* Every word a reserving statement, or a function it calls, can put in
 * its outcome column is one strategy.c's text table maps (decisions,
 * "available", "conflict"): a new word fails here rather than answer 503
 * at run time. */
static void every_outcome_word_is_in_the_table(void **state)
{
    struct fixture *f = *state;
    int unknown = 0, statements = 0;
    for (int i = 0; i < STMT_COUNT; i++)
        if (strncmp(db_statement_names[i], "reserve_", 8) == 0) {
            unknown += unknown_words(db_statement_names[i], db_statement_sql((enum db_statement)i));
            statements++;
        }
    assert_true(statements >= 4); /* precheck, for-update, batch, atomic */
    PGresult *res =
        PQexec(f->db, "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
                      "WHERE p.proname IN ('reservd_reserve', 'reservd_reserve_atomic')");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 2);
    for (int row = 0; row < PQntuples(res); row++)
        unknown += unknown_words(PQgetvalue(res, row, 0), PQgetvalue(res, row, 1));
    PQclear(res);
    assert_int_equal(unknown, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_statement_returns_its_declared_columns),
        cmocka_unit_test(decoders_refuse_other_shapes),
        cmocka_unit_test(every_outcome_word_is_in_the_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
