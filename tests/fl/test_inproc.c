/* The coordinator and the client as objects in one process (coord.h, client.h): a coordinator and
 * five clients as threads give the same model, bit for bit, as the same federation run as six
 * processes (same flags and seeds, secure aggregation off, so nothing secret is random); several
 * coordinators and clients live side by side with no process globals between them. A stop
 * request from another thread ends a waiting coordinator within its longest sleep (1 s).
 *
 *   test_inproc PATH/TO/fedc-coordinator PATH/TO/fedc-client */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prog.h"
#include "fedc/client.h"
#include "fedc/coord.h"
#include "client_args.h"
#include "coord_args.h"
#include "fed.h"
#include "fedc/clock.h"

#define N_CLIENTS 5
#define RUN_TIMEOUT 120

static const char *g_coord, *g_client;

/* argv of the coordinator and of client k, the same for processes and threads. */
typedef struct argset {
    char model[4096], shard[N_CLIENTS][4096], name[N_CLIENTS][16];
    const char *coord[32], *client[N_CLIENTS][24];
    int n_coord, n_client;
} argset;

static void make_args(argset *a, const fed *f, const char *coord_bin, const char *client_bin) {
    char *m = fed_path(f, "model.fedc");
    snprintf(a->model, sizeof a->model, "%s", m);
    free(m);
    const char *co[] = {coord_bin,
                        "--bind",
                        f->endpoint,
                        "--insecure",
                        "--secagg",
                        "off",
                        "--min-clients",
                        "5",
                        "--rounds",
                        "3",
                        "--layers",
                        "8",
                        "--seed",
                        "7",
                        "--model-out",
                        a->model,
                        "--wait-timeout",
                        "60",
                        "--heartbeat-timeout",
                        "10",
                        "--quiet",
                        NULL};
    a->n_coord = 0;
    while (co[a->n_coord]) {
        a->coord[a->n_coord] = co[a->n_coord];
        a->n_coord++;
    }
    a->coord[a->n_coord] = NULL;
    for (int k = 0; k < N_CLIENTS; k++) {
        char file[32];
        snprintf(file, sizeof file, "shard%d.csv", k);
        char *s = fed_path(f, file);
        snprintf(a->shard[k], sizeof a->shard[k], "%s", s);
        free(s);
        snprintf(a->name[k], sizeof a->name[k], "bank-%c", 'a' + k);
        const char *cl[] = {client_bin, "--connect", f->endpoint, "--insecure", "--secagg",
                            "off",      "--name",    a->name[k],  "--data",     a->shard[k],
                            "--label",  "bad",       "--quiet",   NULL};
        a->n_client = 0;
        while (cl[a->n_client]) {
            a->client[k][a->n_client] = cl[a->n_client];
            a->n_client++;
        }
        a->client[k][a->n_client] = NULL;
    }
}

/* The federation as processes: returns the model file's bytes (caller frees). */
static char *run_processes(fed *f, size_t *len) {
    argset a;
    make_args(&a, f, g_coord, g_client);
    const char *env[] = {"OMP_NUM_THREADS=1", NULL};
    char *out = fed_path(f, "proc.out"), *err = fed_path(f, "proc.err");
    int co = proc_spawn(a.coord, env, out, err);
    assert_true(co > 0);
    int cl[N_CLIENTS];
    for (int k = 0; k < N_CLIENTS; k++) {
        cl[k] = proc_spawn(a.client[k], env, out, err);
        assert_true(cl[k] > 0);
    }
    proc_result r;
    assert_int_equal(proc_wait(co, &r, RUN_TIMEOUT), 0);
    if (r.status != 0) {
        size_t n;
        char *log = proc_read_file(err, &n);
        print_message("coordinator process: status %d\n%s\n", r.status, log ? log : "");
        free(log);
    }
    assert_int_equal(r.status, 0);
    for (int k = 0; k < N_CLIENTS; k++) {
        assert_int_equal(proc_wait(cl[k], &r, RUN_TIMEOUT), 0);
        assert_int_equal(r.status, 0);
    }
    free(out);
    free(err);
    char *bytes = proc_read_file(a.model, len);
    assert_non_null(bytes);
    return bytes;
}

typedef struct coord_job {
    fedc_coord *co;
    int rc;
} coord_job;

typedef struct client_job {
    fedc_client *cl;
    int rc;
} client_job;

static void *coord_thread(void *arg) {
    coord_job *j = arg;
    j->rc = fedc_coord_run(j->co);
    return NULL;
}

static void *client_thread(void *arg) {
    client_job *j = arg;
    j->rc = fedc_client_run(j->cl);
    return NULL;
}

/* The same federation as threads of this process, configured from the same argv through the
 * programs' own parsers. */
static char *run_threads(fed *f, size_t *len) {
    argset a;
    make_args(&a, f, "fedc-coordinator", "fedc-client");
    coord_cfg ccfg;
    assert_int_equal(fedc_coord_args(&ccfg, a.n_coord, (char **)a.coord), -1);
    static client_args cargs[N_CLIENTS];
    for (int k = 0; k < N_CLIENTS; k++)
        assert_int_equal(fedc_client_args(&cargs[k], a.n_client, (char **)a.client[k]), -1);
    fedc_diag d;
    coord_job cj = {0};
    client_job kj[N_CLIENTS];
    memset(kj, 0, sizeof kj);
    assert_int_equal(fedc_coord_new(&cj.co, &ccfg, &d), FEDC_OK);
    for (int k = 0; k < N_CLIENTS; k++)
        assert_int_equal(fedc_client_new(&kj[k].cl, &cargs[k].cfg, &d), FEDC_OK);
    pthread_t ct, kt[N_CLIENTS];
    assert_int_equal(pthread_create(&ct, NULL, coord_thread, &cj), 0);
    for (int k = 0; k < N_CLIENTS; k++)
        assert_int_equal(pthread_create(&kt[k], NULL, client_thread, &kj[k]), 0);
    assert_int_equal(pthread_join(ct, NULL), 0);
    for (int k = 0; k < N_CLIENTS; k++)
        assert_int_equal(pthread_join(kt[k], NULL), 0);
    assert_int_equal(cj.rc, 0);
    for (int k = 0; k < N_CLIENTS; k++) {
        assert_int_equal(kj[k].rc, 0);
        fedc_client_destroy(&kj[k].cl);
        assert_null(kj[k].cl);
        fedc_client_args_release(&cargs[k]);
    }
    fedc_coord_destroy(&cj.co);
    assert_null(cj.co);
    char *bytes = proc_read_file(a.model, len);
    assert_non_null(bytes);
    return bytes;
}

static void test_threads_match_processes(void **state) {
    (void)state;
    fed fp, ft;
    memset(&fp, 0, sizeof fp);
    memset(&ft, 0, sizeof ft);
    assert_int_equal(fed_init(&fp, "fedc-test-inproc-p-", g_coord, g_client), 0);
    assert_int_equal(fed_init(&ft, "fedc-test-inproc-t-", g_coord, g_client), 0);
    assert_int_equal(fed_write_shards(&fp, N_CLIENTS, "shard"), 0);
    assert_int_equal(fed_write_shards(&ft, N_CLIENTS, "shard"), 0);
    size_t lp = 0, lt = 0;
    char *mp = run_processes(&fp, &lp);
    char *mt = run_threads(&ft, &lt);
    print_message("model file: %zu bytes as processes, %zu as threads\n", lp, lt);
    assert_true(lp > 100);
    assert_int_equal(lp, lt);
    assert_memory_equal(mp, mt, lp);
    free(mp);
    free(mt);
    fed_release(&fp, 0);
    fed_release(&ft, 0);
}

/* A coordinator waiting for clients that never come stops within a second of a stop request from
 * another thread (exit code 0, as for a signal: a requested stop is not a failure); the loop
 * sleeps at most 1 s. */
static void test_stop_from_another_thread(void **state) {
    (void)state;
    fed f;
    memset(&f, 0, sizeof f);
    assert_int_equal(fed_init(&f, "fedc-test-inproc-s-", g_coord, g_client), 0);
    argset a;
    make_args(&a, &f, "fedc-coordinator", "fedc-client");
    coord_cfg ccfg;
    assert_int_equal(fedc_coord_args(&ccfg, a.n_coord, (char **)a.coord), -1);
    fedc_diag d;
    coord_job cj = {0};
    assert_int_equal(fedc_coord_new(&cj.co, &ccfg, &d), FEDC_OK);
    pthread_t ct;
    assert_int_equal(pthread_create(&ct, NULL, coord_thread, &cj), 0);
    nanosleep(&(struct timespec){0, 300000000}, NULL);
    double t0 = fedc_clock_s();
    fedc_coord_stop(cj.co);
    assert_int_equal(pthread_join(ct, NULL), 0);
    double took = fedc_clock_s() - t0;
    print_message("stopped after %.3f s, exit code %d\n", took, cj.rc);
    assert_true(took < 2.5); /* the loop sleeps at most 1 s between looks at the flag */
    assert_int_equal(cj.rc, 0);
    fedc_coord_destroy(&cj.co);
    fed_release(&f, 0);
}

/* The parsers refuse bad flags with the programs' exit code, and a config without the required
 * fields is refused by the constructors. */
static void test_args_and_new_refuse(void **state) {
    (void)state;
    coord_cfg c;
    const char *bad[] = {"fedc-coordinator", "--bind", "tcp://127.0.0.1:1",
                         "--rounds",         "zero",   NULL};
    assert_int_equal(fedc_coord_args(&c, 5, (char **)bad), FEDC_EXIT_USAGE);
    client_args ca;
    const char *badc[] = {"fedc-client", "--insecure", NULL};
    assert_int_equal(fedc_client_args(&ca, 2, (char **)badc), FEDC_EXIT_USAGE);
    fedc_client_args_release(&ca);
    fedc_diag d;
    fedc_coord *co = (fedc_coord *)&d; /* must be overwritten */
    coord_cfg empty;
    memset(&empty, 0, sizeof empty);
    assert_int_equal(fedc_coord_new(&co, &empty, &d), FEDC_EINVAL);
    assert_null(co);
    fedc_client *cl = NULL;
    client_cfg ce;
    memset(&ce, 0, sizeof ce);
    assert_int_equal(fedc_client_new(&cl, &ce, &d), FEDC_EINVAL);
    assert_null(cl);
    fedc_coord_destroy(&co); /* NULL is fine */
    fedc_client_destroy(&cl);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FEDC-COORDINATOR FEDC-CLIENT\n", argv[0]);
        return 2;
    }
    g_coord = argv[1];
    g_client = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_and_new_refuse),
        cmocka_unit_test(test_stop_from_another_thread),
        cmocka_unit_test(test_threads_match_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
