/* Events: one statement creates all of them (atomic) and returns their ids
 * in creation order. With more than one event, names get " 1".." K". */
#include "seed.h"

#include <inttypes.h>
#include <stdio.h>

static const char EVENTS_SQL[] =
    "INSERT INTO events (name, date, location, max_tickets) "
    "SELECT CASE WHEN $4::int = 1 THEN $1::text ELSE $1::text || ' ' || g END, "
    "       now() + interval '30 days', $2::text, $3::int "
    "  FROM generate_series(1, $4::int) AS g ORDER BY g "
    "RETURNING id";

static const char EVENT_LOCATION[] = "Loadtest hall";

int seed_events(PGconn *conn, const char *name, int64_t tickets, int64_t count)
{
    char tickets_txt[24], count_txt[24];
    snprintf(tickets_txt, sizeof tickets_txt, "%" PRId64, tickets);
    snprintf(count_txt, sizeof count_txt, "%" PRId64, count);
    const char *params[] = {name, EVENT_LOCATION, tickets_txt, count_txt};

    PGresult *res = PQexecParams(conn, EVENTS_SQL, 4, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        seed_report("creating events failed", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        PQclear(res);
        return SEED_FAIL;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        printf("%s\n", PQgetvalue(res, i, 0));
    PQclear(res);
    if (n != count) {
        fprintf(stderr, "reservd-seed: expected %" PRId64 " events, the server created %d\n", count, n);
        return SEED_FAIL;
    }
    return fflush(stdout) == 0 ? SEED_OK : SEED_FAIL;
}
