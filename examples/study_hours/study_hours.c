/* The smallest complete use of core/nn: study hours and attendance -> pass/fail with a 2-3-1
 * network (sigmoid hidden layer, sigmoid output), trained by plain SGD on a dozen rows, then
 * asked about two new students. The same data is in study_hours.csv for `fedc train`. */
#include <stdio.h>

#include "fedc/model.h"
#include "fedc/train.h"

int main(void) {
    /* (hours studied, attendance %) -> passed */
    static const float x[][2] = {{1, 40}, {2, 55},    {2.5f, 60}, {3, 45},    {3.5f, 70},
                                 {4, 50}, {4.5f, 80}, {5, 65},    {5.5f, 85}, {6, 75},
                                 {7, 90}, {8, 95},    {3, 85},    {6, 35}};
    static const float y[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0};
    const int n = (int)(sizeof y / sizeof y[0]);
    int rc = 1;
    fedc_dataset *ds = NULL;
    fedc_model *m = NULL;
    fedc_diag d = {{0}};

    if (fedc_dataset_new(&ds, n, 2))
        goto out;
    for (int i = 0; i < n; i++) {
        ds->x[2 * i] = x[i][0];
        ds->x[2 * i + 1] = x[i][1];
        ds->y[i] = y[i];
    }
    int hidden[] = {3};
    fedc_arch arch;
    if (fedc_arch_make(&arch, 2, hidden, 1, FEDC_ACT_SIGMOID, FEDC_TASK_BINARY, 2, &d) ||
        fedc_model_new(&m, &arch))
        goto out;
    /* Standardise with the data's own statistics and keep them in the model for prediction. */
    fedc_dataset_stats(m->mean, m->std, ds);
    fedc_dataset_standardize(ds, m->mean, m->std);
    fedc_model_init(m, 42);

    fedc_train_cfg cfg = fedc_train_defaults();
    cfg.epochs = 300;
    cfg.batch = n;
    cfg.opt.kind = FEDC_OPT_SGD;
    cfg.opt.lr = 0.3f;
    cfg.patience = 0;
    fedc_train_report rep;
    if (fedc_train(m, ds, NULL, &cfg, &rep, &d)) {
        fprintf(stderr, "study_hours: %s\n", d.msg);
        goto out;
    }
    printf("2-3-1 sigmoid network, %d epochs of SGD: final loss %.4f\n", rep.epochs_run,
           rep.final_train_loss);
    static const float ask[][2] = {{2, 50}, {7, 85}};
    float p[2];
    if (fedc_model_predict(p, m, &ask[0][0], 2))
        goto out;
    for (int i = 0; i < 2; i++)
        printf("  %.0f hours, %.0f%% attendance -> P(pass) = %.3f\n", (double)ask[i][0],
               (double)ask[i][1], (double)p[i]);
    rc = 0;
out:
    if (rc && d.msg[0])
        fprintf(stderr, "study_hours: %s\n", d.msg);
    fedc_model_destroy(&m);
    fedc_dataset_destroy(&ds);
    return rc;
}
