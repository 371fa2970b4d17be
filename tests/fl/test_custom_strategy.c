/* examples/custom_strategy (argv[1]) as the coordinator of three stock fedc-client processes
 * (argv[2]; the stock fedc-coordinator is argv[3]) on German credit shards, secure aggregation on:
 * the strategy, FedAvg with a server learning rate eta_0 gamma^(t-1), only needs the sum.
 *   - with gamma = 1 it is FedAvg, so its final model must equal the stock coordinator's with the
 *     same seeds byte for byte (the embedder's configuration and the strategy's step match
 *     fedc-coordinator's);
 *   - with gamma = 0.5 the model must differ from the stock one, and the strategy's own line for
 *     every round must give lr 0.5^(t-1). This is the negative control: a coordinator that ignored
 *     coord_cfg.strategy would produce the stock model and no such lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed.h"
#include "fedc/modelfile.h"

/* The parameters of a model file's bytes (the card, which names the strategy, aside). */
static fedc_model *decode(const char *bytes, size_t len) {
    fedc_model *m = NULL;
    fedc_diag d;
    assert_int_equal(fedc_model_decode(&m, (const uint8_t *)bytes, len, "model", &d), FEDC_OK);
    return m;
}

#define ROUNDS 3
#define RUN_TIMEOUT 60
#define START_TIMEOUT 15

static const char *g_example, *g_client, *g_coord;

typedef struct runs {
    fed f[3];
    int ok;
} runs;

static int setup(void **state) {
    runs *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    if (fed_init(&r->f[0], "fedc-test-cs-", g_example, g_client) ||
        fed_init(&r->f[1], "fedc-test-cs-", g_example, g_client) ||
        fed_init(&r->f[2], "fedc-test-cs-", g_coord, g_client)) {
        for (int i = 0; i < 3; i++)
            fed_release(&r->f[i], 0);
        free(r);
        return -1;
    }
    *state = r;
    return 0;
}

static int teardown(void **state) {
    runs *r = *state;
    for (int i = 0; i < 3; i++)
        fed_release(&r->f[i], !r->ok); /* the logs of a failed test */
    free(r);
    return 0;
}

/* One federation: the coordinator with args (its --model-out added), three clients; returns the
 * model file's bytes (caller frees) after every process exited 0. */
static char *run(fed *f, const char *const *extra, size_t *len) {
    assert_int_equal(fed_write_shards(f, 3, "shard"), 0);
    char *model = fed_path(f, "model.fedc");
    assert_non_null(model);
    const char *args[16];
    int n = 0;
    const char *base[] = {"--min-clients", "3", "--rounds",    "3",
                          "--seed",        "5", "--model-out", model};
    for (size_t i = 0; i < sizeof base / sizeof *base; i++)
        args[n++] = base[i];
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    assert_int_equal(fed_start_coord(f, NULL, args, 0, START_TIMEOUT), 0);
    for (int k = 0; k < 3; k++) {
        char name[16], file[16];
        snprintf(name, sizeof name, "bank-%c", 'a' + k);
        snprintf(file, sizeof file, "shard%d.csv", k);
        char *csv = fed_path(f, file);
        assert_true(fed_start_client(f, name, csv, NULL, NULL) >= 0);
        free(csv);
    }
    assert_int_equal(fed_wait(&f->coord, RUN_TIMEOUT), 0);
    if (f->coord.res.status != 0)
        print_message("coordinator exited %d\n", f->coord.res.status);
    assert_int_equal(f->coord.res.status, 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(fed_wait(&f->cl[k], 20), 0);
        assert_int_equal(f->cl[k].res.status, 0);
    }
    char *bytes = proc_read_file(model, len);
    assert_non_null(bytes);
    free(model);
    return bytes;
}

static void test_strategy_runs_in_the_stock_coordinator(void **state) {
    runs *r = *state;
    const char *flat[] = {"--server-lr", "1", "--lr-decay", "1", NULL};
    const char *decay[] = {"--server-lr", "1", "--lr-decay", "0.5", NULL};
    size_t l_flat = 0, l_decay = 0, l_stock = 0;
    char *m_flat = run(&r->f[0], flat, &l_flat);
    char *m_decay = run(&r->f[1], decay, &l_decay);
    char *m_stock = run(&r->f[2], NULL, &l_stock);

    /* gamma = 1: FedAvg, the stock model's parameters bit for bit (the model cards differ: each
     * names the rule that aggregated). */
    assert_true(l_stock > 100);
    fedc_model *a = decode(m_flat, l_flat), *b = decode(m_stock, l_stock),
               *c = decode(m_decay, l_decay);
    assert_int_equal(a->n_params, b->n_params);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
    assert_non_null(strstr(a->meta, "\"aggregator\":\"fedavg-decay\""));
    assert_non_null(strstr(b->meta, "\"aggregator\":\"mean\""));
    /* gamma = 0.5: another model (same size). */
    assert_int_equal(c->n_params, b->n_params);
    assert_memory_not_equal(c->params, b->params, c->n_params * sizeof(float));
    fedc_model_destroy(&a);
    fedc_model_destroy(&b);
    fedc_model_destroy(&c);

    /* The strategy's own line for every round, with the decayed rate (written out here). */
    size_t n = 0;
    char *out = proc_read_file(r->f[1].coord.out, &n);
    assert_non_null(out);
    int seen = 0;
    for (const char *p = out; (p = strstr(p, "custom_strategy: round ")) != NULL; p++) {
        unsigned round = 0;
        double lr = 0;
        assert_int_equal(sscanf(p, "custom_strategy: round %u server lr %lf", &round, &lr), 2);
        assert_int_equal(round, (unsigned)seen + 1);
        assert_float_equal(lr, 1.0 / (double)(1u << seen), 1e-9);
        seen++;
    }
    free(out);
    assert_int_equal(seen, ROUNDS);
    /* The stock coordinator prints no such line. */
    out = proc_read_file(r->f[2].coord.out, &n);
    assert_non_null(out);
    assert_null(strstr(out, "custom_strategy:"));
    free(out);
    free(m_flat);
    free(m_decay);
    free(m_stock);
    r->ok = 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s CUSTOM_STRATEGY FEDC_CLIENT FEDC_COORDINATOR\n", argv[0]);
        return 2;
    }
    g_example = argv[1];
    g_client = argv[2];
    g_coord = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_strategy_runs_in_the_stock_coordinator, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
