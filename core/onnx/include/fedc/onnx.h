/* fedc's MLP as an ONNX model (proto/onnx_subset.proto, encoded with protobuf-c).
 *
 * The graph, for a model with L dense layers and F inputs:
 *   input "input" float [N, F] (N symbolic: any batch size)
 *   Sub(input, mean) -> Div(., std)                       the model's standardisation
 *   per layer l: MatMul(., dense<l>.weight) -> Add(., dense<l>.bias)
 *                then the hidden activation (Relu, LeakyRelu alpha 0.01, Sigmoid, Tanh) for l < L-1
 *   output activation: Sigmoid (binary), Softmax axis -1 (multiclass), none (regression)
 *   output "score" float [N, 1] (binary, regression) or [N, K] (multiclass)
 * Weights, biases, mean and std are FLOAT initializers with fedc's values bit for bit; the
 * operator set is the standard one at FEDC_ONNX_OPSET, the IR version FEDC_ONNX_IR_VERSION.
 * The feature names are in the model's doc_string (one per input column, in order) and in the
 * metadata_props (feature_names, a JSON array), with the task, label, layer sizes and the model's
 * data recipe (fedc_model.meta) when it has one. Flat models (n_layers 0, a model of the clients'
 * own) have no graph fedc knows and are refused. */
#ifndef FEDC_ONNX_H
#define FEDC_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "fedc/err.h"
#include "fedc/model.h"

/* ONNX IR version 7 with the standard operator set 13 (the pairing of ONNX 1.8): every operator
 * used here has its current definition by opset 13 (Softmax's per-axis meaning among them). */
#define FEDC_ONNX_IR_VERSION 7
#define FEDC_ONNX_OPSET 13
/* Protobuf messages are limited to 2 GiB - 1 bytes, and so is an ONNX file without external data.
 */
#define FEDC_ONNX_MAX_BYTES 2147483647u

/* Encodes m as an ONNX ModelProto into a new buffer (*buf caller-owned, free()); producer_version
 * is written as the producer's version (borrowed). FEDC_EINVAL with a message in d for a flat
 * model, FEDC_ERANGE for one whose file would exceed FEDC_ONNX_MAX_BYTES, FEDC_ENOMEM. m is
 * borrowed for the call. */
FEDC_MUST_CHECK fedc_err fedc_onnx_encode(uint8_t **buf, size_t *len, const fedc_model *m,
                                          const char *producer_version, fedc_diag *d);

#endif
