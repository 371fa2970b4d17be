/* libFuzzer target for the CSV loader: every input is written to an in-memory file (memfd) and
 * loaded with fedc_csv_load, label column "label", once with nothing dropped and once dropping
 * column "id" (as in the seeds under corpus/csv). An accepted file then goes through task
 * detection and statistics, as the client does with it. Besides the sanitizers' checks (no
 * crash, leak or undefined behaviour), it checks the loader's contract: a refusal leaves *out
 * NULL and names the problem; an accepted dataset has at least one row and one feature, finite
 * values, and names for every column. A broken promise aborts, which libFuzzer reports as a
 * crash. The loader reads only from a path, hence the memfd (Linux) instead of a memory API. */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fedc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_csv: contract broken: %s (%s)\n", what, detail);
    abort();
}

static int is_finite(float v) {
    return v - v == 0.0f;
}

static void check_accepted(const fedc_dataset *ds, const char *drop) {
    if (ds->n_rows < 1 || ds->n_features < 1 || !ds->x || !ds->y || !ds->feature_names ||
        !ds->label_name)
        broken("accepted dataset is empty or incomplete", "");
    if (strcmp(ds->label_name, "label") != 0)
        broken("label column has another name", ds->label_name);
    for (int j = 0; j < ds->n_features; j++) {
        if (!ds->feature_names[j] || !ds->feature_names[j][0])
            broken("feature without a name", "");
        if (!strcmp(ds->feature_names[j], "label") || (drop && !strcmp(ds->feature_names[j], drop)))
            broken("label or dropped column kept as a feature", ds->feature_names[j]);
    }
    size_t cells = (size_t)ds->n_rows * (size_t)ds->n_features;
    for (size_t i = 0; i < cells; i++) {
        if (!is_finite(ds->x[i]))
            broken("feature value not finite", "");
    }
    for (int i = 0; i < ds->n_rows; i++) {
        if (!is_finite(ds->y[i]))
            broken("label not finite", "");
    }

    /* What the client does next: task detection, then the statistics it shares. */
    fedc_task task;
    int n_classes = 0;
    fedc_diag d;
    fedc_err rc = fedc_dataset_task(&task, &n_classes, ds, 0, &d);
    if (rc == FEDC_OK && (n_classes < 2 || n_classes > ds->n_rows + 1))
        broken("task detection gave an impossible class count", "");
    if (rc != FEDC_OK && !d.msg[0])
        broken("task detection refused without a message", fedc_strerror(rc));
    float *mean = malloc((size_t)ds->n_features * sizeof *mean);
    float *std = malloc((size_t)ds->n_features * sizeof *std);
    if (!mean || !std)
        abort();
    fedc_dataset_stats(mean, std, ds);
    for (int j = 0; j < ds->n_features; j++) {
        if (!is_finite(mean[j]) || !(std[j] > 0.0f) || !is_finite(std[j]))
            broken("statistics not finite or std not positive", ds->feature_names[j]);
    }
    free(mean);
    free(std);
}

static void one(const char *path, const char *drop) {
    fedc_dataset *ds = (fedc_dataset *)&ds; /* not NULL: the loader must clear it */
    fedc_diag d;
    d.msg[0] = '\0';
    const char *drops[1] = {drop};
    fedc_err rc = fedc_csv_load(&ds, path, "label", drops, drop ? 1 : 0, &d);
    if (rc != FEDC_OK) {
        if (ds)
            broken("refused file left *out set", d.msg);
        if (!d.msg[0] || !memchr(d.msg, '\0', sizeof d.msg))
            broken("refusal without a message", fedc_strerror(rc));
        return;
    }
    if (!ds)
        broken("accepted dataset is NULL", "");
    check_accepted(ds, drop);
    fedc_dataset_destroy(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* One memfd for the whole run, rewritten for every input; the loader opens it by path. */
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fedc_fuzz_csv", 0);
        if (fd < 0) {
            perror("fuzz_csv: memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) {
        perror("fuzz_csv: ftruncate");
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        if (w <= 0) {
            perror("fuzz_csv: pwrite");
            abort();
        }
        done += (size_t)w;
    }
    one(path, NULL);
    one(path, "id");
    return 0;
}
