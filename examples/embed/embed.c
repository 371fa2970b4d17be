/* A program outside fedc's source tree that embeds the installed library: it names an error code,
 * builds, initialises and frees a small model through the public core/nn API, and makes an
 * identity key (core/net, libsodium inside libfedc). tests/install/test_install.sh builds it
 * against an installed prefix with pkg-config and with find_package(fedc) and checks the line it
 * prints. It deliberately uses nothing but installed headers. */
#include <stdio.h>

#include "fedc/err.h"
#include "fedc/keys.h"
#include "fedc/model.h"

int main(void) {
    fedc_diag d = {{0}};
    fedc_model *m = NULL;
    fedc_identity id;
    int hidden[1] = {4};
    fedc_arch arch;
    fedc_err rc = fedc_arch_make(&arch, 3, hidden, 1, FEDC_ACT_RELU, FEDC_TASK_BINARY, 2, &d);
    if (rc)
        goto out;
    rc = fedc_model_new(&m, &arch);
    if (rc)
        goto out;
    fedc_model_init(m, 42);
    rc = fedc_key_generate(&id, "embed", &d);
    if (rc)
        goto out;
    fedc_key_wipe(&id);
    /* 3-4-1: 3 x 4 weights + 4 biases + 4 x 1 weights + 1 bias. */
    printf("fedc embed: %s; model 3-4-1 with %zu parameters; key ok\n", fedc_strerror(FEDC_EINVAL),
           m->n_params);
out:
    if (rc)
        fprintf(stderr, "fedc embed: %s%s%s\n", fedc_strerror(rc), d.msg[0] ? ": " : "", d.msg);
    fedc_model_destroy(&m);
    return rc ? 1 : 0;
}
