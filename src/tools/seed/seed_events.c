/* Events: one statement creates all of them (atomic) and returns their ids
 * in creation order. With more than one event, names get " 1".." K". */
#include "seed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static const char EVENTS_SQL[] =
    "INSERT INTO events (name, date, location, max_tickets) "
    "SELECT CASE WHEN $4::int = 1 THEN $1::text ELSE $1::text || ' ' || g END, "
    "       now() + interval '30 days', $2::text, $3::int "
    "  FROM generate_series(1, $4::int) AS g ORDER BY g "
    "RETURNING id";

static const char EVENT_LOCATION[] = "Loadtest hall";

/* "export EVENT_ID=first [EVENT_COUNT=n]" for ids in one block. */
static int print_export(PGresult *res, int n)
{
    long long first = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    long long last = strtoll(PQgetvalue(res, n - 1, 0), NULL, 10);
    if (last - first + 1 != n) {
        fprintf(stderr,
                "reservd-seed: the %d events' ids are not consecutive (%lld..%lld); "
                "--export needs them to be\n",
                n, first, last);
        return SEED_FAIL;
    }
    if (n == 1)
        printf("export EVENT_ID=%lld\n", first);
    else
        printf("export EVENT_ID=%lld EVENT_COUNT=%d\n", first, n);
    return SEED_OK;
}

int seed_events(PGconn *conn, const char *name, int64_t tickets, int64_t count, bool export_env)
{
    char tickets_txt[24], count_txt[24];
    snprintf(tickets_txt, sizeof tickets_txt, "%" PRId64, tickets);
    snprintf(count_txt, sizeof count_txt, "%" PRId64, count);
    const char *params[] = { name, EVENT_LOCATION, tickets_txt, count_txt };

    PGresult *res = PQexecParams(conn, EVENTS_SQL, 4, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        seed_report("creating events failed",
                    res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        PQclear(res);
        return SEED_FAIL;
    }
    int n = PQntuples(res);
    int rc = n == count ? SEED_OK : SEED_FAIL;
    if (rc != SEED_OK)
        fprintf(stderr, "reservd-seed: expected %" PRId64 " events, the server created %d\n", count,
                n);
    else if (export_env)
        rc = print_export(res, n);
    else
        for (int i = 0; i < n; i++)
            printf("%s\n", PQgetvalue(res, i, 0));
    PQclear(res);
    return fflush(stdout) == 0 ? rc : SEED_FAIL;
}
