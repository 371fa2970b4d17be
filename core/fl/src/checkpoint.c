/* Checkpoint encoding and decoding (layout in fedc/checkpoint.h). */
#include "fedc/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/modelfile.h"
#include "fedc/wbuf.h"

#define CKPT_MAGIC "FEDCCKPT"
#define CKPT_VERSION 3u
#define CKPT_MAX_CLIENTS 4096

fedc_err fedc_ckpt_save(const char *path, const fedc_ckpt *c, fedc_diag *d) {
    uint8_t *model = NULL;
    size_t model_len = 0;
    fedc_err rc = fedc_model_encode(&model, &model_len, c->model);
    if (rc) {
        fedc_diag_set(d, "cannot encode the model for the checkpoint");
        return rc;
    }
    fedc_wbuf w = {0};
    fedc_wbuf_put(&w, CKPT_MAGIC, 8);
    fedc_wbuf_u32(&w, CKPT_VERSION);
    fedc_wbuf_put(&w, c->run_id, 16);
    fedc_wbuf_u32(&w, c->round);
    fedc_wbuf_u64(&w, c->seed);
    fedc_wbuf_u32(&w, (uint32_t)c->have_stats);
    fedc_wbuf_put(&w, &c->pos_weight, 4);
    fedc_wbuf_u32(&w, (uint32_t)c->server_kind);
    fedc_wbuf_u64(&w, c->server_t);
    fedc_wbuf_u64(&w, c->n);
    fedc_wbuf_u32(&w, c->m != NULL);
    if (c->m)
        fedc_wbuf_put(&w, c->m, 4 * c->n);
    fedc_wbuf_u32(&w, c->v != NULL);
    if (c->v)
        fedc_wbuf_put(&w, c->v, 4 * c->n);
    size_t ml = c->metrics_line ? strlen(c->metrics_line) : 0;
    fedc_wbuf_u32(&w, (uint32_t)ml);
    if (ml)
        fedc_wbuf_put(&w, c->metrics_line, ml);
    fedc_wbuf_u32(&w, (uint32_t)c->n_clients);
    for (int i = 0; i < c->n_clients; i++) {
        uint32_t l = (uint32_t)strlen(c->clients[i]);
        fedc_wbuf_u32(&w, l);
        fedc_wbuf_put(&w, c->clients[i], l);
    }
    fedc_wbuf_put(&w, &c->total_rows, 8);
    fedc_wbuf_u64(&w, model_len);
    fedc_wbuf_put(&w, model, model_len);
    free(model);
    if (!w.oom)
        fedc_wbuf_u32(&w, fedc_crc32(w.p, w.len));
    if (w.oom) {
        free(w.p);
        return FEDC_ENOMEM;
    }
    rc = fedc_write_atomic(path, w.p, w.len, d);
    free(w.p);
    return rc;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t len, off;
    int bad;
} rbuf;

static void get(rbuf *r, void *dst, size_t n) {
    if (r->bad || n > r->len - r->off) {
        r->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
}
static uint32_t get_u32(rbuf *r) {
    uint32_t v;
    get(r, &v, 4);
    return v;
}
static uint64_t get_u64(rbuf *r) {
    uint64_t v;
    get(r, &v, 8);
    return v;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

fedc_err fedc_ckpt_load(const char *path, fedc_ckpt *c, fedc_diag *d) {
    memset(c, 0, sizeof *c);
    size_t len = 0;
    char *buf = read_all(path, &len);
    if (!buf) {
        int e = errno;
        fedc_diag_set(d, "%s: cannot read: %s", path, strerror(e));
        errno = e;
        return FEDC_EIO;
    }
    fedc_err rc = FEDC_EFORMAT;
    rbuf r = {(const uint8_t *)buf, len, 0, 0};
    char magic[8];
    get(&r, magic, 8);
    if (r.bad || memcmp(magic, CKPT_MAGIC, 8) != 0) {
        fedc_diag_set(d, "%s: not a fedc checkpoint (bad magic)", path);
        goto out;
    }
    uint32_t version = get_u32(&r);
    if (version < 1u || version > CKPT_VERSION) {
        fedc_diag_set(d, "%s: checkpoint version %u, this program reads version %u", path, version,
                      CKPT_VERSION);
        goto out;
    }
    uint32_t crc;
    if (len < 4 + 12) {
        fedc_diag_set(d, "%s: truncated checkpoint", path);
        goto out;
    }
    memcpy(&crc, buf + len - 4, 4);
    if (crc != fedc_crc32(buf, len - 4)) {
        fedc_diag_set(d, "%s: checkpoint checksum mismatch (corrupt or truncated file)", path);
        rc = FEDC_ECHECKSUM;
        goto out;
    }
    r.len = len - 4;
    get(&r, c->run_id, 16);
    c->round = get_u32(&r);
    c->seed = get_u64(&r);
    c->have_stats = get_u32(&r) != 0;
    get(&r, &c->pos_weight, 4);
    c->server_kind = (fedc_server_opt)get_u32(&r);
    c->server_t = get_u64(&r);
    c->n = get_u64(&r);
    if (r.bad || c->n > (r.len - r.off) / 4) {
        fedc_diag_set(d, "%s: inconsistent sizes in the checkpoint", path);
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        float **dst = k == 0 ? &c->m : &c->v;
        if (get_u32(&r)) {
            if (r.bad || c->n > (r.len - r.off) / 4) {
                r.bad = 1;
                break;
            }
            *dst = malloc(4 * (c->n ? c->n : 1));
            if (!*dst) {
                rc = FEDC_ENOMEM;
                goto out;
            }
            get(&r, *dst, 4 * c->n);
        }
    }
    uint32_t ml = get_u32(&r);
    if (r.bad || ml > r.len - r.off) {
        fedc_diag_set(d, "%s: inconsistent sizes in the checkpoint", path);
        goto out;
    }
    c->metrics_line = malloc((size_t)ml + 1);
    if (!c->metrics_line) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    get(&r, c->metrics_line, ml);
    c->metrics_line[ml] = 0;
    if (version >= 2) {
        uint32_t nc = get_u32(&r);
        if (r.bad || nc > CKPT_MAX_CLIENTS) {
            fedc_diag_set(d, "%s: inconsistent client list in the checkpoint", path);
            goto out;
        }
        c->clients = calloc((size_t)nc + 1, sizeof *c->clients);
        if (!c->clients) {
            rc = FEDC_ENOMEM;
            goto out;
        }
        for (uint32_t i = 0; i < nc; i++) {
            uint32_t l = get_u32(&r);
            if (r.bad || l == 0 || l > 64 || l > r.len - r.off) {
                fedc_diag_set(d, "%s: inconsistent client list in the checkpoint", path);
                goto out;
            }
            c->clients[i] = malloc((size_t)l + 1);
            if (!c->clients[i]) {
                rc = FEDC_ENOMEM;
                goto out;
            }
            c->n_clients = (int)i + 1;
            get(&r, c->clients[i], l);
            c->clients[i][l] = 0;
        }
    }
    if (version >= 3) {
        get(&r, &c->total_rows, 8);
        if (r.bad || !(c->total_rows >= 0) || !isfinite(c->total_rows)) {
            fedc_diag_set(d, "%s: bad total row count in the checkpoint", path);
            goto out;
        }
    }
    uint64_t model_len = get_u64(&r);
    if (r.bad || model_len != r.len - r.off) {
        fedc_diag_set(d, "%s: inconsistent sizes in the checkpoint", path);
        goto out;
    }
    rc = fedc_model_decode(&c->model, r.p + r.off, (size_t)model_len, path, d);
    if (rc)
        goto out;
    if (c->model->n_params != c->n && (c->m || c->v)) {
        fedc_diag_set(d, "%s: server state of %llu values for a model of %zu parameters", path,
                      (unsigned long long)c->n, c->model->n_params);
        rc = FEDC_EFORMAT;
        goto out;
    }
    rc = FEDC_OK;
out:
    free(buf);
    if (rc)
        fedc_ckpt_release(c);
    return rc;
}

void fedc_ckpt_release(fedc_ckpt *c) {
    for (int i = 0; c->clients && i < c->n_clients; i++)
        free(c->clients[i]);
    free(c->clients);
    c->clients = NULL;
    c->n_clients = 0;
    free(c->m);
    free(c->v);
    free(c->metrics_line);
    fedc_model_destroy(&c->model);
    c->m = c->v = NULL;
    c->metrics_line = NULL;
}
