/* Prints the server's route table, one "METHOD /pattern" per line, for the
 * test that compares it with docs/openapi.json. */

#include <stdio.h>

#include "app.h"

int main(void)
{
    for (size_t i = 0; i < app_nroutes; i++)
        printf("%s %s\n", http_method_name(app_routes[i].method), app_routes[i].pattern);
    return 0;
}
