/* fedc's MLP as an ONNX model (fedc/onnx.h has the graph). The protobuf-c messages are built in
 * one heap block whose tensors point straight into the model's buffers (nothing is copied
 * before packing), packed into one buffer, and the block freed. Strings are built where they
 * are variable (the doc_string, the metadata); node and value names are fixed-size text. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedc/onnx.h"
#include "onnx_subset.pb-c.h"

/* Sub and Div, then MatMul, Add and an activation per layer. */
#define MAX_NODES (2 + 3 * FEDC_MAX_LAYERS)
/* mean, std, then a weight and a bias per layer. */
#define MAX_INITS (2 + 2 * FEDC_MAX_LAYERS)
#define MAX_META 8
#define NAME_LEN 40

typedef struct graph_builder {
    Onnx__NodeProto node[MAX_NODES];
    Onnx__NodeProto *node_p[MAX_NODES];
    char *node_in[MAX_NODES][2], *node_out[MAX_NODES][1];
    char node_name[MAX_NODES][NAME_LEN];
    Onnx__AttributeProto attr[MAX_NODES];
    Onnx__AttributeProto *attr_p[MAX_NODES];
    int n_nodes;
    Onnx__TensorProto init[MAX_INITS];
    Onnx__TensorProto *init_p[MAX_INITS];
    int64_t init_dims[MAX_INITS][2];
    int n_inits;
    /* Value names: what each node writes ("dense0.matmul", ...), "input" and "score" aside. */
    char value[MAX_NODES][NAME_LEN];
    char init_name[MAX_INITS][NAME_LEN];
    /* The graph's input and output: value info, type, tensor type, shape, two dimensions. */
    Onnx__ValueInfoProto io[2];
    Onnx__ValueInfoProto *io_p[2];
    Onnx__TypeProto type[2];
    Onnx__TypeProto__Tensor ttype[2];
    Onnx__TensorShapeProto shape[2];
    Onnx__TensorShapeProto__Dimension dim[2][2];
    Onnx__TensorShapeProto__Dimension *dim_p[2][2];
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opset_p[1];
    Onnx__StringStringEntryProto meta[MAX_META];
    Onnx__StringStringEntryProto *meta_p[MAX_META];
    char *meta_owned[MAX_META]; /* values built here (freed with the builder) */
    int n_meta;
    Onnx__ModelProto model;
} graph_builder;

/* A growing text buffer; on allocation failure it stays failed (ok == 0) and appends nothing. */
typedef struct text_buf {
    char *s;
    size_t len, cap;
    int ok;
} text_buf;

__attribute__((format(printf, 2, 3))) static void text_add(text_buf *t, const char *fmt, ...) {
    if (!t->ok)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->ok = 0;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->ok = 0;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Adds a FLOAT initializer of one or two dimensions over data (borrowed: the model's buffer). */
static const char *add_init(graph_builder *g, const char *name, const float *data, int64_t d0,
                            int64_t d1) {
    int k = g->n_inits++;
    FEDC_CHECK(k < MAX_INITS);
    Onnx__TensorProto *t = &g->init[k];
    onnx__tensor_proto__init(t);
    snprintf(g->init_name[k], NAME_LEN, "%s", name);
    t->name = g->init_name[k];
    g->init_dims[k][0] = d0;
    g->init_dims[k][1] = d1;
    t->dims = g->init_dims[k];
    t->n_dims = d1 > 0 ? 2 : 1;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    /* protobuf-c only reads the array while packing; the cast drops const for its struct. */
    t->float_data = (float *)data;
    t->n_float_data = (size_t)(d0 * (d1 > 0 ? d1 : 1));
    g->init_p[k] = t;
    return t->name;
}

/* Adds a node op_type(in0[, in1]) -> out (NULL: a value named after the node); set_attr gives it
 * an attribute. */
static void add_node(graph_builder *g, const char *op_type, const char *name, const char *in0,
                     const char *in1, const char *out) {
    int k = g->n_nodes++;
    FEDC_CHECK(k < MAX_NODES);
    Onnx__NodeProto *nd = &g->node[k];
    onnx__node_proto__init(nd);
    snprintf(g->node_name[k], NAME_LEN, "%s", name);
    snprintf(g->value[k], NAME_LEN, "%s", out ? out : name);
    g->node_in[k][0] = (char *)in0;
    g->node_in[k][1] = (char *)in1;
    g->node_out[k][0] = g->value[k];
    nd->name = g->node_name[k];
    nd->op_type = (char *)op_type;
    nd->input = g->node_in[k];
    nd->n_input = in1 ? 2 : 1;
    nd->output = g->node_out[k];
    nd->n_output = 1;
    g->node_p[k] = nd;
}

/* Gives node k (the last added) one attribute: a float or an integer. */
static void set_attr(graph_builder *g, const char *name, int is_float, float f, int64_t i) {
    int k = g->n_nodes - 1;
    Onnx__AttributeProto *a = &g->attr[k];
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    if (is_float) {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        a->has_f = 1;
        a->f = f;
    } else {
        a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        a->has_i = 1;
        a->i = i;
    }
    g->attr_p[k] = a;
    g->node[k].attribute = &g->attr_p[k];
    g->node[k].n_attribute = 1;
}

/* The value node k writes (the input of the next node). */
static const char *out_of(const graph_builder *g) {
    return g->value[g->n_nodes - 1];
}

/* Graph input (which 0) or output (1): a float tensor [N, width], N symbolic. */
static void set_io(graph_builder *g, int which, const char *name, int width, const char *doc) {
    Onnx__TensorShapeProto__Dimension *d = g->dim[which];
    onnx__tensor_shape_proto__dimension__init(&d[0]);
    d[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    d[0].dim_param = "N";
    onnx__tensor_shape_proto__dimension__init(&d[1]);
    d[1].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d[1].dim_value = width;
    g->dim_p[which][0] = &d[0];
    g->dim_p[which][1] = &d[1];
    onnx__tensor_shape_proto__init(&g->shape[which]);
    g->shape[which].dim = g->dim_p[which];
    g->shape[which].n_dim = 2;
    onnx__type_proto__tensor__init(&g->ttype[which]);
    g->ttype[which].has_elem_type = 1;
    g->ttype[which].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    g->ttype[which].shape = &g->shape[which];
    onnx__type_proto__init(&g->type[which]);
    g->type[which].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    g->type[which].tensor_type = &g->ttype[which];
    onnx__value_info_proto__init(&g->io[which]);
    g->io[which].name = (char *)name;
    g->io[which].type = &g->type[which];
    g->io[which].doc_string = (char *)doc;
    g->io_p[which] = &g->io[which];
}

/* Adds a metadata entry; value is copied (NULL value: nothing added). Returns 0, -1 on OOM. */
static int add_meta(graph_builder *g, const char *key, const char *value) {
    if (!value)
        return 0;
    int k = g->n_meta;
    FEDC_CHECK(k < MAX_META);
    size_t n = strlen(value) + 1;
    if (!(g->meta_owned[k] = malloc(n)))
        return -1;
    memcpy(g->meta_owned[k], value, n);
    g->n_meta++;
    onnx__string_string_entry_proto__init(&g->meta[k]);
    g->meta[k].key = (char *)key;
    g->meta[k].value = g->meta_owned[k];
    g->meta_p[k] = &g->meta[k];
    return 0;
}

static const char *onnx_act(fedc_act act) {
    switch (act) {
    case FEDC_ACT_RELU:
        return "Relu";
    case FEDC_ACT_LEAKY_RELU:
        return "LeakyRelu";
    case FEDC_ACT_SIGMOID:
        return "Sigmoid";
    case FEDC_ACT_TANH:
        return "Tanh";
    case FEDC_ACT_SOFTMAX:
        return "Softmax";
    case FEDC_ACT_LINEAR:
        break;
    }
    return NULL;
}

/* Appends activation act after the last node; the value it writes is `out` (NULL: its name). */
static void add_act(graph_builder *g, fedc_act act, const char *name, const char *out) {
    const char *op = onnx_act(act);
    if (!op)
        return;
    add_node(g, op, name, out_of(g), NULL, out);
    if (act == FEDC_ACT_LEAKY_RELU)
        set_attr(g, "alpha", 1, FEDC_LEAKY_SLOPE, 0);
    else if (act == FEDC_ACT_SOFTMAX)
        set_attr(g, "axis", 0, 0.0f, -1);
}

/* What "score" holds, in words (the doc_string and metadata say it). */
static const char *score_meaning(const fedc_model *m) {
    switch (m->arch.task) {
    case FEDC_TASK_BINARY:
        return "probability of class 1 (sigmoid of the output unit)";
    case FEDC_TASK_MULTICLASS:
        return "class probabilities 0..K-1 (softmax over the last axis)";
    case FEDC_TASK_REGRESSION:
        break;
    }
    return "the predicted value (linear output)";
}

/* The doc_string: what the graph computes and the input columns by name, in order. */
static void describe(text_buf *t, const fedc_model *m) {
    const fedc_arch *a = &m->arch;
    text_add(t, "fedc %s MLP, layers ", fedc_task_name(a->task));
    for (int l = 0; l <= a->n_layers; l++)
        text_add(t, "%s%d", l ? "-" : "", a->sizes[l]);
    text_add(t, ", hidden activation %s", fedc_act_name(a->hidden_act));
    if (m->label_name)
        text_add(t, ", label '%s'", m->label_name);
    text_add(t,
             ".\nInput 'input' [N, %d]: raw feature values; the graph standardises them "
             "((x - mean) / std, fedc's training statistics).\nOutput 'score' [N, %d]: %s.\n"
             "Input columns, in order:\n",
             a->sizes[0], fedc_model_out_width(m), score_meaning(m));
    for (int j = 0; j < a->sizes[0]; j++) {
        if (m->feature_names)
            text_add(t, "  %d %s\n", j, m->feature_names[j]);
        else
            text_add(t, "  %d (unnamed: the model stores no feature names)\n", j);
    }
}

/* The metadata entries; returns 0, -1 on OOM. */
static int add_metadata(graph_builder *g, const fedc_model *m) {
    const fedc_arch *a = &m->arch;
    int rc = -1;
    char *names = NULL;
    text_buf layers = {NULL, 0, 0, 1};
    char n_classes[16];
    if (m->feature_names) {
        cJSON *arr = cJSON_CreateArray();
        for (int j = 0; arr && j < a->sizes[0]; j++) {
            cJSON *s = cJSON_CreateString(m->feature_names[j]);
            if (!s || !cJSON_AddItemToArray(arr, s)) {
                cJSON_Delete(s);
                cJSON_Delete(arr);
                arr = NULL;
            }
        }
        names = arr ? cJSON_PrintUnformatted(arr) : NULL;
        cJSON_Delete(arr);
        if (!names)
            goto out;
    }
    for (int l = 0; l <= a->n_layers; l++)
        text_add(&layers, "%s%d", l ? "," : "", a->sizes[l]);
    snprintf(n_classes, sizeof n_classes, "%d", a->n_classes);
    if (!layers.ok || add_meta(g, "feature_names", names) ||
        add_meta(g, "task", fedc_task_name(a->task)) || add_meta(g, "n_classes", n_classes) ||
        add_meta(g, "layers", layers.s) ||
        add_meta(g, "hidden_activation", fedc_act_name(a->hidden_act)) ||
        add_meta(g, "score", score_meaning(m)) || add_meta(g, "label", m->label_name) ||
        add_meta(g, "fedc_recipe", m->meta))
        goto out;
    rc = 0;
out:
    cJSON_free(names);
    free(layers.s);
    return rc;
}

fedc_err fedc_onnx_encode(uint8_t **buf, size_t *len, const fedc_model *m,
                          const char *producer_version, fedc_diag *d) {
    const fedc_arch *a = &m->arch;
    fedc_err rc = FEDC_ENOMEM;
    graph_builder *g = NULL;
    text_buf doc = {NULL, 0, 0, 1};
    *buf = NULL;
    *len = 0;
    if (a->n_layers < 1) {
        fedc_diag_set(d,
                      "the model is a flat parameter vector of a model of the clients' own "
                      "(n_layers 0, %zu parameters): fedc knows no graph for it, only fedc's MLP "
                      "can be exported",
                      m->n_params);
        return FEDC_EINVAL;
    }
    if (!(g = calloc(1, sizeof *g)))
        goto out;

    /* Standardisation, then the dense layers. */
    const char *mean = add_init(g, "mean", m->mean, a->sizes[0], 0);
    const char *std = add_init(g, "std", m->std, a->sizes[0], 0);
    add_node(g, "Sub", "centre", "input", mean, NULL);
    add_node(g, "Div", "standardise", out_of(g), std, NULL);
    const fedc_act out_act = fedc_task_output_act(a->task);
    for (int l = 0; l < a->n_layers; l++) {
        char wn[NAME_LEN], bn[NAME_LEN], nn[NAME_LEN];
        const int last = l == a->n_layers - 1;
        snprintf(wn, sizeof wn, "dense%d.weight", l);
        snprintf(bn, sizeof bn, "dense%d.bias", l);
        const char *w = add_init(g, wn, m->w[l], a->sizes[l], a->sizes[l + 1]);
        const char *b = add_init(g, bn, m->b[l], a->sizes[l + 1], 0);
        snprintf(nn, sizeof nn, "dense%d.matmul", l);
        add_node(g, "MatMul", nn, out_of(g), w, NULL);
        snprintf(nn, sizeof nn, "dense%d.add", l);
        /* The last layer's Add writes "score" itself when no activation follows. */
        add_node(g, "Add", nn, out_of(g), b, last && out_act == FEDC_ACT_LINEAR ? "score" : NULL);
        snprintf(nn, sizeof nn, "dense%d.%s", l, last ? "output" : "act");
        add_act(g, last ? out_act : a->hidden_act, nn, last ? "score" : NULL);
    }
    FEDC_CHECK(strcmp(out_of(g), "score") == 0);

    describe(&doc, m);
    if (!doc.ok || add_metadata(g, m))
        goto out;
    set_io(g, 0, "input", a->sizes[0], "raw feature values, one row per example");
    set_io(g, 1, "score", fedc_model_out_width(m), score_meaning(m));

    onnx__graph_proto__init(&g->graph);
    g->graph.name = "fedc_mlp";
    g->graph.node = g->node_p;
    g->graph.n_node = (size_t)g->n_nodes;
    g->graph.initializer = g->init_p;
    g->graph.n_initializer = (size_t)g->n_inits;
    g->graph.input = &g->io_p[0];
    g->graph.n_input = 1;
    g->graph.output = &g->io_p[1];
    g->graph.n_output = 1;

    onnx__operator_set_id_proto__init(&g->opset);
    g->opset.domain = "";
    g->opset.has_version = 1;
    g->opset.version = FEDC_ONNX_OPSET;
    g->opset_p[0] = &g->opset;

    Onnx__ModelProto *mp = &g->model;
    onnx__model_proto__init(mp);
    mp->has_ir_version = 1;
    mp->ir_version = FEDC_ONNX_IR_VERSION;
    mp->producer_name = "fedc";
    mp->producer_version = (char *)producer_version;
    mp->doc_string = doc.s;
    mp->graph = &g->graph;
    mp->opset_import = g->opset_p;
    mp->n_opset_import = 1;
    mp->metadata_props = g->meta_p;
    mp->n_metadata_props = (size_t)g->n_meta;

    size_t n = onnx__model_proto__get_packed_size(mp);
    if (n > FEDC_ONNX_MAX_BYTES) {
        fedc_diag_set(d,
                      "the ONNX model would take %zu bytes: a protobuf message, an ONNX file holds "
                      "at most %lu (weights in external files are not written)",
                      n, (unsigned long)FEDC_ONNX_MAX_BYTES);
        rc = FEDC_ERANGE;
        goto out;
    }
    uint8_t *out = malloc(n ? n : 1);
    if (!out)
        goto out;
    size_t packed = onnx__model_proto__pack(mp, out);
    FEDC_CHECK(packed == n);
    *buf = out;
    *len = n;
    rc = FEDC_OK;
out:
    if (rc == FEDC_ENOMEM)
        fedc_diag_set(d, "out of memory while encoding the ONNX model");
    if (g)
        for (int k = 0; k < g->n_meta; k++)
            free(g->meta_owned[k]);
    free(g);
    free(doc.s);
    return rc;
}
