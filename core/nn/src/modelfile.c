/* Model file encoding, decoding and atomic writes (format in modelfile.h). Decoding treats the
 * bytes as hostile: every length is checked against what remains before it is used. */
#include "fedc/modelfile.h"
#include "fedc/wbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint32_t fedc_crc32(const void *data, size_t len) {
    const uint8_t *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_f32(fedc_wbuf *w, float f) {
    uint32_t v;
    memcpy(&v, &f, 4);
    fedc_wbuf_u32(w, v);
}

static void put_str(fedc_wbuf *w, const char *s) {
    size_t n = strlen(s);
    fedc_wbuf_u32(w, (uint32_t)n);
    fedc_wbuf_put(w, s, n);
}

fedc_err fedc_model_encode(uint8_t **buf, size_t *len, const fedc_model *m) {
    fedc_wbuf w = {0};
    const fedc_arch *a = &m->arch;
    fedc_wbuf_put(&w, FEDC_MODEL_MAGIC, 8);
    fedc_wbuf_u32(&w, FEDC_MODEL_VERSION);
    fedc_wbuf_u32(&w, (uint32_t)a->task);
    fedc_wbuf_u32(&w, (uint32_t)a->n_classes);
    fedc_wbuf_u32(&w, (uint32_t)a->hidden_act);
    fedc_wbuf_u32(&w, (uint32_t)a->n_layers);
    for (int l = 0; l <= a->n_layers; l++)
        fedc_wbuf_u32(&w, (uint32_t)a->sizes[l]);
    int has_names = m->feature_names != NULL && m->label_name != NULL;
    fedc_wbuf_u32(&w, (uint32_t)has_names);
    if (has_names) {
        for (int j = 0; j < a->sizes[0]; j++)
            put_str(&w, m->feature_names[j]);
        put_str(&w, m->label_name);
    }
    for (int j = 0; j < a->sizes[0]; j++)
        put_f32(&w, m->mean[j]);
    for (int j = 0; j < a->sizes[0]; j++)
        put_f32(&w, m->std[j]);
    fedc_wbuf_u64(&w, (uint64_t)m->n_params);
    for (size_t i = 0; i < m->n_params; i++)
        put_f32(&w, m->params[i]);
    /* version 2: the data recipe (fedc_model.meta), length 0 when there is none */
    if (m->meta)
        put_str(&w, m->meta);
    else
        fedc_wbuf_u32(&w, 0);
    if (!w.oom)
        fedc_wbuf_u32(&w, fedc_crc32(w.p, w.len));
    if (w.oom) {
        free(w.p);
        return FEDC_ENOMEM;
    }
    *buf = w.p;
    *len = w.len;
    return FEDC_OK;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t len, pos;
    const char *what;
    fedc_diag *d;
} rbuf;

/* Takes n bytes or reports the file as truncated, naming the field being read. */
static const uint8_t *take(rbuf *r, size_t n, const char *field) {
    if (n > r->len - r->pos) {
        fedc_diag_set(r->d,
                      "%s: truncated model file: reading %s needs %zu more bytes at offset %zu, "
                      "file has %zu bytes",
                      r->what, field, n, r->pos, r->len);
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static int get_u32(rbuf *r, uint32_t *v, const char *field) {
    const uint8_t *b = take(r, 4, field);
    if (!b)
        return -1;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static int get_f32(rbuf *r, float *f, const char *field) {
    uint32_t v;
    if (get_u32(r, &v, field))
        return -1;
    memcpy(f, &v, 4);
    return 0;
}

static char *get_str(rbuf *r, const char *field) {
    uint32_t n;
    if (get_u32(r, &n, field))
        return NULL;
    if (n > FEDC_MODEL_MAX_NAME) {
        fedc_diag_set(r->d, "%s: corrupt model file: %s length %u exceeds %d", r->what, field, n,
                      FEDC_MODEL_MAX_NAME);
        return NULL;
    }
    const uint8_t *b = take(r, n, field);
    if (!b)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        fedc_diag_set(r->d, "%s: out of memory", r->what);
        return NULL;
    }
    memcpy(s, b, n);
    s[n] = 0;
    return s;
}

fedc_err fedc_model_decode(fedc_model **out, const uint8_t *buf, size_t len, const char *what,
                           fedc_diag *d) {
    fedc_err rc = FEDC_EFORMAT;
    fedc_model *m = NULL;
    char **names = NULL;
    char *label = NULL, *meta = NULL;
    int nf = 0;
    rbuf r = {buf, len, 0, what, d};
    *out = NULL;

    const uint8_t *magic = take(&r, 8, "the magic number");
    if (!magic)
        goto out;
    if (memcmp(magic, FEDC_MODEL_MAGIC, 8) != 0) {
        fedc_diag_set(d, "%s: not a fedc model file (bad magic number)", what);
        goto out;
    }
    uint32_t version, task, n_classes, act, n_layers;
    if (get_u32(&r, &version, "the version"))
        goto out;
    if (version < 1 || version > FEDC_MODEL_VERSION) {
        fedc_diag_set(d,
                      "%s: model file version %u is not supported (this fedc reads versions 1 "
                      "to %u)",
                      what, version, FEDC_MODEL_VERSION);
        goto out;
    }
    if (get_u32(&r, &task, "the task") || get_u32(&r, &n_classes, "the class count") ||
        get_u32(&r, &act, "the activation") || get_u32(&r, &n_layers, "the layer count"))
        goto out;
    /* n_layers 0: a flat vector of an own model (fedc_model_new_flat). */
    if (task > FEDC_TASK_REGRESSION || act > FEDC_ACT_TANH || n_layers > FEDC_MAX_LAYERS) {
        fedc_diag_set(d, "%s: corrupt model file: task %u, activation %u, layers %u out of range",
                      what, task, act, n_layers);
        goto out;
    }
    int sizes[FEDC_MAX_LAYERS + 1];
    for (uint32_t l = 0; l <= n_layers; l++) {
        uint32_t s;
        if (get_u32(&r, &s, "the layer sizes"))
            goto out;
        if (s < 1 || s > FEDC_MAX_WIDTH) {
            fedc_diag_set(d, "%s: corrupt model file: layer width %u out of range 1..%d", what, s,
                          FEDC_MAX_WIDTH);
            goto out;
        }
        sizes[l] = (int)s;
    }
    fedc_arch arch;
    fedc_diag ad;
    if (n_layers == 0) {
        memset(&arch, 0, sizeof arch);
        arch.sizes[0] = sizes[0];
        arch.task = (fedc_task)task;
        arch.n_classes = (int)n_classes;
        if (n_classes != (task == FEDC_TASK_BINARY       ? 2u
                          : task == FEDC_TASK_REGRESSION ? 1u
                                                         : n_classes) ||
            n_classes < 1 || (task == FEDC_TASK_MULTICLASS && n_classes < 3)) {
            fedc_diag_set(d, "%s: corrupt model file: %u classes for a %s task", what, n_classes,
                          fedc_task_name((fedc_task)task));
            goto out;
        }
    } else if (fedc_arch_make(&arch, sizes[0], sizes + 1, (int)n_layers - 1, (fedc_act)act,
                              (fedc_task)task, (int)n_classes, &ad) ||
               arch.sizes[n_layers] != sizes[n_layers]) {
        fedc_diag_set(d, "%s: inconsistent architecture in model file (%u outputs for a %s task)",
                      what, (unsigned)sizes[n_layers], fedc_task_name((fedc_task)task));
        goto out;
    }
    nf = sizes[0];
    uint32_t has_names;
    if (get_u32(&r, &has_names, "the name flag"))
        goto out;
    if (has_names > 1) {
        fedc_diag_set(d, "%s: corrupt model file: name flag %u", what, has_names);
        goto out;
    }
    if (has_names) {
        names = calloc((size_t)nf, sizeof(char *));
        if (!names) {
            rc = FEDC_ENOMEM;
            goto out;
        }
        for (int j = 0; j < nf; j++)
            if (!(names[j] = get_str(&r, "a feature name")))
                goto out;
        if (!(label = get_str(&r, "the label name")))
            goto out;
    }
    /* Everything the architecture implies must be present before anything is allocated for it,
     * so a short hostile file cannot make us allocate gigabytes. */
    size_t n_flat = 0; /* a flat model's parameter count, read ahead of the statistics */
    if (n_layers == 0) {
        size_t at = r.pos + 8 * (size_t)nf;
        if (at > r.len || r.len - at < 8) {
            fedc_diag_set(d, "%s: truncated model file: no parameter count at offset %zu", what,
                          at);
            goto out;
        }
        uint64_t np = 0;
        for (int b = 7; b >= 0; b--)
            np = np << 8 | r.p[at + (size_t)b];
        if (np < 1 || np > FEDC_MAX_PARAMS_FLAT) {
            fedc_diag_set(d, "%s: corrupt model file: %llu parameters of a flat model", what,
                          (unsigned long long)np);
            goto out;
        }
        n_flat = (size_t)np;
    }
    size_t n_want = n_layers ? fedc_arch_n_params(&arch) : n_flat;
    size_t need = (2 * (size_t)nf + n_want) * 4 + 8 + 4 + (version >= 2 ? 4 : 0);
    if (need > r.len - r.pos) {
        fedc_diag_set(d,
                      "%s: truncated model file: the architecture needs %zu more bytes of "
                      "statistics, parameters and checksum at offset %zu, file has %zu bytes",
                      what, need, r.pos, r.len);
        goto out;
    }
    rc = n_layers ? fedc_model_new(&m, &arch)
                  : fedc_model_new_flat(&m, nf, arch.task, arch.n_classes, n_flat);
    if (rc) {
        fedc_diag_set(d, "%s: out of memory allocating a model of %zu parameters", what, n_want);
        goto out;
    }
    rc = FEDC_EFORMAT;
    for (int j = 0; j < nf; j++)
        if (get_f32(&r, &m->mean[j], "the feature means"))
            goto out;
    for (int j = 0; j < nf; j++)
        if (get_f32(&r, &m->std[j], "the feature deviations"))
            goto out;
    uint32_t lo, hi;
    if (get_u32(&r, &lo, "the parameter count") || get_u32(&r, &hi, "the parameter count"))
        goto out;
    uint64_t np = (uint64_t)hi << 32 | lo;
    if (np != m->n_params) {
        fedc_diag_set(d, "%s: corrupt model file: %llu parameters stored, architecture needs %zu",
                      what, (unsigned long long)np, m->n_params);
        goto out;
    }
    const uint8_t *pb = take(&r, m->n_params * 4, "the parameters");
    if (!pb)
        goto out;
    for (size_t i = 0; i < m->n_params; i++) {
        uint32_t v = (uint32_t)pb[4 * i] | (uint32_t)pb[4 * i + 1] << 8 |
                     (uint32_t)pb[4 * i + 2] << 16 | (uint32_t)pb[4 * i + 3] << 24;
        memcpy(&m->params[i], &v, 4);
    }
    if (version >= 2) {
        uint32_t ml;
        if (get_u32(&r, &ml, "the data recipe length"))
            goto out;
        if (ml > FEDC_MODEL_MAX_META) {
            fedc_diag_set(d, "%s: corrupt model file: data recipe of %u bytes (at most %d)", what,
                          ml, FEDC_MODEL_MAX_META);
            goto out;
        }
        if (ml) {
            const uint8_t *mb = take(&r, ml, "the data recipe");
            if (!mb)
                goto out;
            if (memchr(mb, 0, ml)) {
                fedc_diag_set(d, "%s: corrupt model file: NUL byte in the data recipe", what);
                goto out;
            }
            if (!(meta = malloc((size_t)ml + 1))) {
                rc = FEDC_ENOMEM;
                goto out;
            }
            memcpy(meta, mb, ml);
            meta[ml] = 0;
        }
    }
    size_t body = r.pos;
    uint32_t crc;
    if (get_u32(&r, &crc, "the checksum"))
        goto out;
    if (r.pos != len) {
        fedc_diag_set(d, "%s: %zu unexpected bytes after the end of the model", what, len - r.pos);
        goto out;
    }
    if (crc != fedc_crc32(buf, body)) {
        fedc_diag_set(d, "%s: checksum mismatch: the model file is corrupted", what);
        rc = FEDC_ECHECKSUM;
        goto out;
    }
    for (size_t i = 0; i < m->n_params; i++) {
        if (!isfinite(m->params[i])) {
            fedc_diag_set(d, "%s: parameter %zu is not a finite number", what, i);
            goto out;
        }
    }
    for (int j = 0; j < nf; j++) {
        if (!isfinite(m->mean[j]) || !isfinite(m->std[j]) || !(m->std[j] > 0.0f)) {
            fedc_diag_set(d, "%s: invalid standardisation statistics for feature %d", what, j + 1);
            goto out;
        }
    }
    m->feature_names = names;
    m->label_name = label;
    m->meta = meta;
    names = NULL;
    label = NULL;
    meta = NULL;
    rc = FEDC_OK;
out:
    if (names) {
        for (int j = 0; j < nf; j++)
            free(names[j]);
        free(names);
    }
    free(label);
    free(meta);
    if (rc)
        fedc_model_destroy(&m);
    *out = m;
    return rc;
}

fedc_err fedc_write_atomic(const char *path, const void *data, size_t len, fedc_diag *d) {
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    char *dir = malloc(pl + 2);
    fedc_err rc = FEDC_EIO;
    int fd = -1;
    if (!tmp || !dir) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        fedc_diag_set(d, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        tmp[0] = 0;
        goto out;
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t k = write(fd, p + done, len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            fedc_diag_set(d, "%s: write failed: %s", tmp, strerror(errno));
            goto out;
        }
        done += (size_t)k;
    }
    /* mkstemp creates 0600; model files are not secret, so follow the umask like fopen would. */
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0) {
        fedc_diag_set(d, "%s: cannot set permissions: %s", tmp, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        fedc_diag_set(d, "%s: fsync failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        fedc_diag_set(d, "%s: close failed: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fedc_diag_set(d, "%s: cannot rename temporary file into place: %s", path, strerror(errno));
        goto out;
    }
    tmp[0] = 0;
    /* Make the rename itself durable. */
    memcpy(dir, path, pl + 1);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir ? 1 : 0] = 0;
    else
        strcpy(dir, ".");
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    rc = FEDC_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmp && tmp[0])
        unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

fedc_err fedc_model_save(const fedc_model *m, const char *path, fedc_diag *d) {
    uint8_t *buf = NULL;
    size_t len = 0;
    fedc_err rc = fedc_model_encode(&buf, &len, m);
    if (rc) {
        fedc_diag_set(d, "%s: out of memory encoding the model", path);
        return rc;
    }
    rc = fedc_write_atomic(path, buf, len, d);
    free(buf);
    return rc;
}

fedc_err fedc_model_load(fedc_model **out, const char *path, fedc_diag *d) {
    fedc_err rc = FEDC_EIO;
    uint8_t *buf = NULL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fedc_diag_set(d, "%s: cannot open model file: %s", path, strerror(errno));
        return FEDC_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fedc_diag_set(d, "%s: not a regular file", path);
        goto out;
    }
    if ((size_t)st.st_size > FEDC_MODEL_MAX_BYTES) {
        fedc_diag_set(d, "%s: model file too large (%lld bytes, limit %zu)", path,
                      (long long)st.st_size, FEDC_MODEL_MAX_BYTES);
        rc = FEDC_EFORMAT;
        goto out;
    }
    size_t len = (size_t)st.st_size;
    buf = malloc(len ? len : 1);
    if (!buf) {
        rc = FEDC_ENOMEM;
        goto out;
    }
    if (fread(buf, 1, len, f) != len) {
        fedc_diag_set(d, "%s: read failed", path);
        goto out;
    }
    rc = fedc_model_decode(out, buf, len, path, d);
out:
    free(buf);
    fclose(f);
    return rc;
}
