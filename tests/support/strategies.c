/* The strategy list from `reservd --list-strategies` (strategies.h). */

#include "strategies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define MAX_STRATEGIES 32

struct listed {
    char name[32];
    enum strategy_kind kind;
};

static struct listed listed[MAX_STRATEGIES];
static int nlisted = -1; /* -1: not asked yet */

/* Parse "name<TAB>safe|unsafe" lines; 0, or -1 on anything else. */
static int parse_line(char *line, struct listed *out)
{
    char *tab = strchr(line, '\t');
    if (!tab)
        return -1;
    *tab = '\0';
    const char *kind = tab + 1;
    size_t n = strlen(line);
    if (n == 0 || n >= sizeof(out->name))
        return -1;
    memcpy(out->name, line, n + 1);
    if (strcmp(kind, "safe") == 0)
        out->kind = STRATEGIES_SAFE;
    else if (strcmp(kind, "unsafe") == 0)
        out->kind = STRATEGIES_UNSAFE;
    else
        return -1;
    return 0;
}

static int list_once(void)
{
    if (nlisted >= 0)
        return 0;
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s' --list-strategies", test_binary("RESERVD_BIN"));
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "cannot run %s\n", cmd);
        return -1;
    }
    char line[128];
    int n = 0, bad = 0;
    while (fgets(line, sizeof(line), p)) {
        line[strcspn(line, "\n")] = '\0';
        if (n == MAX_STRATEGIES || parse_line(line, &listed[n]) != 0)
            bad = 1;
        else
            n++;
    }
    int status = pclose(p);
    if (bad || n == 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: exit status %d, %d strategies%s\n", cmd, status, n,
                bad ? ", unreadable lines" : "");
        return -1;
    }
    nlisted = n;
    return 0;
}

int strategy_count(enum strategy_kind kind)
{
    if (list_once() != 0)
        return -1;
    int k = 0;
    for (int i = 0; i < nlisted; i++)
        k += listed[i].kind == kind;
    return k;
}

const char *strategy_name(enum strategy_kind kind, int i)
{
    if (list_once() != 0)
        return NULL;
    for (int j = 0; j < nlisted; j++)
        if (listed[j].kind == kind && i-- == 0)
            return listed[j].name;
    return NULL;
}

static int push(struct strategy_tests *t, struct CMUnitTest test)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct CMUnitTest *p = realloc(t->tests, cap * sizeof(*p));
        if (!p)
            return -1;
        t->tests = p;
        t->cap = cap;
    }
    t->tests[t->n++] = test;
    return 0;
}

void strategy_tests_add(struct strategy_tests *t, const char *name, CMUnitTestFunction test,
                        CMFixtureFunction setup, CMFixtureFunction teardown,
                        enum strategy_kind kind)
{
    int n = strategy_count(kind);
    if (n <= 0) { /* none of this kind is a failure too: the table lost a row */
        fprintf(stderr, "%s: no %s strategy listed\n", name,
                kind == STRATEGIES_SAFE ? "safe" : "unsafe");
        t->failed = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *strategy = strategy_name(kind, i);
        char *label = NULL;
        if (asprintf(&label, "%s [%s]", name, strategy) < 0 ||
            push(t, (struct CMUnitTest){ label, test, setup, teardown, (void *)strategy }) != 0) {
            free(label);
            t->failed = true;
            return;
        }
    }
}

void strategy_tests_add_one(struct strategy_tests *t, struct CMUnitTest test)
{
    char *label = strdup(test.name);
    test.name = label;
    if (!label || push(t, test) != 0) {
        free(label);
        t->failed = true;
    }
}

int strategy_tests_run(struct strategy_tests *t, const char *group)
{
    int failures = t->failed ? 1 : 0;
    if (t->failed)
        fprintf(stderr, "%s: could not build the test list (see above)\n", group);
    else
        failures = _cmocka_run_group_tests(group, t->tests, t->n, NULL, NULL);
    for (size_t i = 0; i < t->n; i++)
        free((char *)t->tests[i].name);
    free(t->tests);
    *t = (struct strategy_tests){ 0 };
    return failures;
}
