/* One option table for every fedc program, and the parser over it.
 *
 * FEDC_OPTIONS(X) lists each option once: a flag means the same thing, takes the same range and
 * has the same default in fedc-coordinator, fedc-client and every fedc subcommand (a program's
 * own default, where it needs one, is in FEDC_OPTION_DEFAULTS). Each program
 * reads its options from, in order of precedence, its flags (--name VALUE, --name=VALUE),
 * FEDC_<NAME> environment variables ('-' becomes '_', upper case: FEDC_MIN_CLIENTS), a --config
 * FILE (INI, read with libinih: one section per program, keys are the flag names without the
 * dashes), and the table's defaults. --print-config shows every effective value with where it
 * came from, --version the build, --help is generated from the table. The checks between options
 * stay with each program (coordinator/args.c, client/args.c, cli/cmd_*.c). */
#ifndef FEDC_OPTIONS_H
#define FEDC_OPTIONS_H

#include <stdio.h>

#include "fedc/model.h"
#include "prog.h"

/* The programs (a bit each) and their section in a --config file. */
#define FEDC_PROGRAMS(X)                                                                           \
    X(COORD, "coordinator", "fedc-coordinator")                                                    \
    X(CLIENT, "client", "fedc-client")                                                             \
    X(SIM, "sim", "fedc sim")                                                                      \
    X(DEMO, "demo", "fedc demo")                                                                   \
    X(TRAIN, "train", "fedc train")                                                                \
    X(EVAL, "eval", "fedc eval")                                                                   \
    X(SPLIT, "split", "fedc split")                                                                \
    X(KEYGEN, "keygen", "fedc keygen")                                                             \
    X(SYNTH, "synth", "fedc synth")                                                                \
    X(PRIVACY, "privacy", "fedc privacy")                                                          \
    X(REPORT, "report", "fedc report")                                                             \
    X(PROVISION, "provision", "fedc provision")                                                    \
    X(HEALTH, "health", "fedc health")                                                             \
    X(FEATURES, "features", "fedc features")                                                       \
    X(INSPECT, "inspect", "fedc inspect")                                                          \
    X(EXPORT, "export", "fedc export")                                                             \
    X(PREDICT, "predict", "fedc predict")                                                          \
    X(TUNE, "tune", "fedc tune")

enum {
#define FEDC_PROG_BIT_(id, section, display) FEDC_PROGI_##id,
    FEDC_PROGRAMS(FEDC_PROG_BIT_)
#undef FEDC_PROG_BIT_
        FEDC_PROG_COUNT
};
#define FEDC_PROG_COORD (1u << FEDC_PROGI_COORD)
#define FEDC_PROG_CLIENT (1u << FEDC_PROGI_CLIENT)
#define FEDC_PROG_SIM (1u << FEDC_PROGI_SIM)
#define FEDC_PROG_DEMO (1u << FEDC_PROGI_DEMO)
#define FEDC_PROG_TRAIN (1u << FEDC_PROGI_TRAIN)
#define FEDC_PROG_EVAL (1u << FEDC_PROGI_EVAL)
#define FEDC_PROG_SPLIT (1u << FEDC_PROGI_SPLIT)
#define FEDC_PROG_KEYGEN (1u << FEDC_PROGI_KEYGEN)
#define FEDC_PROG_SYNTH (1u << FEDC_PROGI_SYNTH)
#define FEDC_PROG_PRIVACY (1u << FEDC_PROGI_PRIVACY)
#define FEDC_PROG_REPORT (1u << FEDC_PROGI_REPORT)
#define FEDC_PROG_PROVISION (1u << FEDC_PROGI_PROVISION)
#define FEDC_PROG_HEALTH (1u << FEDC_PROGI_HEALTH)
#define FEDC_PROG_FEATURES (1u << FEDC_PROGI_FEATURES)
#define FEDC_PROG_INSPECT (1u << FEDC_PROGI_INSPECT)
#define FEDC_PROG_EXPORT (1u << FEDC_PROGI_EXPORT)
#define FEDC_PROG_PREDICT (1u << FEDC_PROGI_PREDICT)
#define FEDC_PROG_TUNE (1u << FEDC_PROGI_TUNE)
/* Every program of FEDC_PROGRAMS. */
#define FEDC_PROG_ALL ((1u << FEDC_PROG_COUNT) - 1u)

typedef enum fedc_opt_type {
    FEDC_OT_FLAG,   /* no value on the command line; true/false, 1/0, yes/no, on/off elsewhere */
    FEDC_OT_INT,    /* integer in [lo, hi] */
    FEDC_OT_U64,    /* non-negative 64-bit integer (seeds) */
    FEDC_OT_REAL,   /* number in [lo, hi]; with words, also one of them (auto) */
    FEDC_OT_REAL_P, /* number in (lo, hi]: the lower bound excluded, checked after rounding to
                       float so that 1e-50 cannot become a learning rate of 0 */
    FEDC_OT_STR,    /* free text (endpoints, names, schemes the program checks) */
    FEDC_OT_PATH,   /* a file or directory */
    FEDC_OT_CHOICE, /* one of the words */
    FEDC_OT_LIST    /* comma-separated layer widths in [lo, hi] ("none" or "": no layer) */
} fedc_opt_type;

/* --help's sections, in the order they are printed. */
#define FEDC_SECTIONS(X)                                                                           \
    X(NET, "network")                                                                              \
    X(SEC, "security (docs/security.md)")                                                          \
    X(DATA, "data")                                                                                \
    X(AGG, "aggregation (README \"Robust aggregation\")")                                          \
    X(DP, "differential privacy (README \"Differential privacy\")")                                \
    X(ROUNDS, "rounds")                                                                            \
    X(MODEL, "model (input and output sizes come from the data)")                                  \
    X(TRAIN, "training and scoring (a federation's coordinator sends these to every client)")      \
    X(SEARCH, "the search (fedc tune)")                                                            \
    X(SERVER, "server optimiser")                                                                  \
    X(OUT, "outputs")                                                                              \
    X(RUN, "running")

typedef enum fedc_opt_section {
#define FEDC_SEC_ENUM_(id, title) FEDC_SEC_##id,
    FEDC_SECTIONS(FEDC_SEC_ENUM_)
#undef FEDC_SEC_ENUM_
        FEDC_SEC_COUNT
} fedc_opt_section;

/* X(ID, name, type, lo, hi, words, default, programs, section, metavar, help)
 *   words: '|'-separated allowed words (choice), or the words a number may be replaced by (real)
 *   default: the value as text, or NULL when there is none (the help says what the program does
 *   then: required, or derived from other options)
 * The programs are written CO, CL, SIM, DEMO, TR (train), EV (eval), SPL (split), KG (keygen), SYN
 * (synth), PRV (privacy), REP (report), PROV (provision), HLT (health), FEAT (features), EXP
 * (export), PRED (predict), INSP (inspect), TUNE (tune); options.c
 * defines them where it expands the table. The environment variable is FEDC_ + the name upper-cased
 * with '-' as '_' (none for the options of FEDC_OPTION_NO_ENV below). A name is one option
 * everywhere, with two exceptions, whose spellings predate the table and are used by scripts,
 * deploy/ and the README, and whose programs never take both meanings (tests/prog/test_options.c
 * holds the list of such homonyms): MODEL and MODEL_FILE, fedc-coordinator's --model mlp|external
 * names a kind of model, fedc eval's and fedc report's
 * --model FILE a model file; CLIENTS and CLIENT_NAMES, fedc sim's and fedc split's --clients N
 * counts clients, fedc provision's --clients A,B,C names them. */
/* clang-format off */
#define FEDC_OPTIONS(X) \
    X(BIND, "bind", FEDC_OT_STR, 0, 0, NULL, NULL, CO, FEDC_SEC_NET, "ENDPOINT", \
      "ZeroMQ endpoint to listen on, e.g. tcp://*:7070 (required)") \
    X(CONNECT, "connect", FEDC_OT_STR, 0, 0, NULL, NULL, CL, FEDC_SEC_NET, "ENDPOINT", \
      "the coordinator, e.g. tcp://coord:7070 (required)") \
    X(UPSTREAM, "upstream", FEDC_OT_STR, 0, 0, NULL, NULL, CO, FEDC_SEC_NET, "ENDPOINT", \
      "run as an edge aggregator: this coordinator's clients train one round whenever the " \
      "upstream coordinator at ENDPOINT asks, and their secure sum takes part upstream as one " \
      "client weighted by their rows (unset: a root coordinator running its own rounds)") \
    X(MAX_MSG_MB, "max-msg-mb", FEDC_OT_INT, 1, 4000, NULL, "256", CO | CL, FEDC_SEC_NET, "N", \
      "largest message accepted, in MiB; a larger one is refused naming its size. It bounds " \
      "one message, not a model: weights and updates larger than a chunk (4 MiB, or less " \
      "when N is smaller) travel in chunks") \
    X(HEARTBEAT_TIMEOUT, "heartbeat-timeout", FEDC_OT_REAL_P, 0, 1e6, NULL, "10", CO, \
      FEDC_SEC_NET, "S", "silence after which a client is marked dead, in seconds") \
    X(HEARTBEAT_MS, "heartbeat-ms", FEDC_OT_INT, 0, 600000, NULL, "0", CO | CL, FEDC_SEC_NET, "N", \
      "interval between heartbeats, in milliseconds (fedc-coordinator: to --upstream); 0: as " \
      "the coordinator asks, a quarter of its heartbeat timeout (1000 if it says nothing)") \
    X(COORDINATOR_TIMEOUT, "coordinator-timeout", FEDC_OT_REAL_P, 0, 1e7, NULL, "600", CO | CL, \
      FEDC_SEC_NET, "S", "give up after this long without word from the coordinator, in seconds " \
      "(fedc-coordinator: from --upstream)") \
    X(COORD_ADDR, "coordinator", FEDC_OT_STR, 0, 0, NULL, NULL, PROV, FEDC_SEC_NET, "HOST:PORT", \
      "where the clients reach the coordinator: a host name, an IPv4 address or [IPv6], and a " \
      "port in 1..65535 (required for a new federation; the coordinator listens on PORT on every " \
      "interface: edit bind in coordinator.ini to narrow it)") \
    X(URL, "url", FEDC_OT_STR, 0, 0, NULL, NULL, HLT, FEDC_SEC_NET, "URL", \
      "the probe to ask, http://ADDR:PORT/PATH with a numeric IPv4 address, e.g. " \
      "http://127.0.0.1:9100/healthz (required; usually given bare: fedc health URL)") \
    X(TIMEOUT, "timeout", FEDC_OT_REAL_P, 0, 3600, NULL, "3", HLT, FEDC_SEC_NET, "S", \
      "seconds to wait for the whole answer") \
    X(KEY, "key", FEDC_OT_PATH, 0, 0, NULL, NULL, CO | CL, FEDC_SEC_SEC, "FILE", \
      "our secret key, NAME.key_secret from fedc keygen (CurveZMQ; a client is known by NAME)") \
    X(ALLOW, "allow", FEDC_OT_PATH, 0, 0, NULL, NULL, CO, FEDC_SEC_SEC, "DIR", \
      "directory of the clients' NAME.key files: only these join") \
    X(COORDINATOR_KEY, "coordinator-key", FEDC_OT_PATH, 0, 0, NULL, NULL, CO | CL, FEDC_SEC_SEC, \
      "FILE", "the coordinator's public key file (pinned; fedc-coordinator: --upstream's)") \
    X(PEERS, "peers", FEDC_OT_PATH, 0, 0, NULL, NULL, CO | CL, FEDC_SEC_SEC, "DIR", \
      "the federation's public keys (the roster; fedc-coordinator: --upstream's)") \
    X(CLIENT_NAMES, "clients", FEDC_OT_STR, 0, 0, NULL, NULL, PROV, FEDC_SEC_SEC, "A,B,C", \
      "the clients' names, one kit each: 1..64 characters of A-Z a-z 0-9 . _ - ('coordinator' " \
      "is taken); secure aggregation needs 3 or more (required for a new federation)") \
    X(ADD, "add", FEDC_OT_STR, 0, 0, NULL, NULL, PROV, FEDC_SEC_SEC, "NAME", \
      "one more client in the existing kits' directory: its kit, and its public key in " \
      "DIR/coordinator/allow/ and every DIR/CLIENT/peers/ (the coordinator's min-clients goes " \
      "up by one); refuses a name already there, and never replaces a key file") \
    X(INSECURE, "insecure", FEDC_OT_FLAG, 0, 0, NULL, "false", CO | CL | SIM, FEDC_SEC_SEC, NULL, \
      "no CurveZMQ and no allow-list (testing only; warns); secure aggregation stays on") \
    X(SECAGG, "secagg", FEDC_OT_CHOICE, 0, 0, "on|off", "on", CO | CL | SIM | DEMO | TUNE, \
      FEDC_SEC_SEC, \
      "on|off", "secure aggregation (SecAgg+): the coordinator learns only sums over several " \
      "clients, and a client refuses to send plain statistics or updates; off: plain updates") \
    X(SECAGG_NEIGHBOURS, "secagg-neighbours", FEDC_OT_INT, 1, 127, NULL, NULL, CO, FEDC_SEC_SEC, \
      "H", "neighbourhoods of 2H+1 clients (unset: about log2 n; everyone when the federation " \
      "is small)") \
    X(SECAGG_THRESHOLD, "secagg-threshold", FEDC_OT_INT, 1, 255, NULL, NULL, CO, FEDC_SEC_SEC, \
      "T", "Shamir threshold (unset: floor(size/2)+1, more than half the neighbourhood)") \
    X(SECAGG_MIN_NEIGHBOURS, "secagg-min-neighbours", FEDC_OT_INT, 3, 255, NULL, "3", CO | CL, \
      FEDC_SEC_SEC, "M", "the floor: no secure sum over a neighbourhood of fewer than M clients " \
      "(each client holds its own floor)") \
    X(SECAGG_CLIP, "secagg-clip", FEDC_OT_REAL_P, 0, 1e6, NULL, "10", CO, FEDC_SEC_SEC, "C", \
      "updates are clipped to [-C, C] per coordinate for the fixed point") \
    X(SECAGG_MAX_CLIENTS, "secagg-max-clients", FEDC_OT_INT, 2, 65536, NULL, "1024", CO, \
      FEDC_SEC_SEC, "N", "clients the fixed point leaves headroom for") \
    X(DATA, "data", FEDC_OT_PATH, 0, 0, NULL, NULL, CL | SIM | TR | EV | SPL | REP | FEAT | PRED, \
      FEDC_SEC_DATA, "FILE.csv", "CSV data with a header line (required; a client's never " \
      "leaves its machine; fedc eval and fedc report: the test data, with the model's columns; " \
      "fedc features: the raw transactions; fedc predict: the rows to score, read as a stream)") \
    X(TIME_COL, "time", FEDC_OT_STR, 0, 0, NULL, NULL, FEAT, FEDC_SEC_DATA, "COLUMN", \
      "the transactions' time column (required)") \
    X(TIME_FORMAT, "time-format", FEDC_OT_CHOICE, 0, 0, "datetime|epoch", "datetime", FEAT, \
      FEDC_SEC_DATA, "datetime|epoch", "datetime: YYYY-MM-DD HH:MM:SS or YYYY-MM-DDTHH:MM:SS[Z] " \
      "(UTC); epoch: integer seconds since 1970-01-01") \
    X(JSON, "json", FEDC_OT_FLAG, 0, 0, NULL, "false", INSP, FEDC_SEC_OUT, NULL, \
      "print JSON instead of text") \
    X(CALENDAR, "calendar", FEDC_OT_FLAG, 0, 0, NULL, "false", FEAT, FEDC_SEC_DATA, NULL, \
      "add TX_WEEKEND (Saturday or Sunday) and TX_NIGHT (hour 0..6) as 0/1 columns") \
    X(WINDOW, "window", FEDC_OT_STR, 0, 0, NULL, NULL, FEAT, FEDC_SEC_DATA, "SPEC[;SPEC]", \
      "time-window aggregates, ENTITY:D1,D2,...:AGG,AGG[:delay=L] with AGG one of count, " \
      "sum=COL, mean=COL, rate=COL (a 0/1 column) and durations in days; several specs are " \
      "separated by ';' (given once: the option takes one value)") \
    X(SPEC, "spec", FEDC_OT_PATH, 0, 0, NULL, NULL, FEAT, FEDC_SEC_DATA, "FILE.json", \
      "the features spec (time column and format, calendar, window specs) from a file written " \
      "by --spec-out; --time, --time-format, --calendar and --window may then be left out, and " \
      "any of them given must agree with it") \
    X(SPEC_OUT, "spec-out", FEDC_OT_PATH, 0, 0, NULL, NULL, FEAT, FEDC_SEC_OUT, "FILE.json", \
      "write the features spec as JSON (atomically, after the output), for --spec and for " \
      "the training programs' features-spec option") \
    X(TMPDIR, "tmpdir", FEDC_OT_PATH, 0, 0, NULL, NULL, FEAT, FEDC_SEC_RUN, "DIR", \
      "where rows out of time order are sorted, in files removed as they are made (unset: " \
      "$TMPDIR, else the directory of --out)") \
    X(MEMORY_MB, "memory-mb", FEDC_OT_REAL_P, 0, 1048576, NULL, "256", FEAT, FEDC_SEC_RUN, "M", \
      "MiB of rows sorted at a time when the rows are out of time order (each sorted part " \
      "goes to a file under --tmpdir)") \
    X(LABEL, "label", FEDC_OT_STR, 0, 0, NULL, NULL, CL | SIM | TR | EV | SPL | PROV | TUNE, \
      FEDC_SEC_DATA, "COLUMN", "the label column (required; fedc eval: unset, the label the " \
      "model was trained on; fedc provision: optional, written into every client.ini, unset: " \
      "each client gives it)") \
    X(DROP, "drop", FEDC_OT_STR, 0, 0, NULL, NULL, CL | SIM | TR | EV | PROV | TUNE, \
      FEDC_SEC_DATA, "A,B", \
      "columns to ignore (identifiers, ...; fedc provision: written into every client.ini)") \
    X(DELIMITER, "delimiter", FEDC_OT_STR, 0, 0, NULL, NULL, \
      CL | SIM | TR | EV | SPL | REP | PRED | FEAT, FEDC_SEC_DATA, "C", "the field separator: one " \
      "character such as , ; | : or 'tab' (unset: a comma; fedc eval, fedc report and fedc " \
      "predict: the one the model was trained with)") \
    X(MISSING, "missing", FEDC_OT_CHOICE, 0, 0, "error|mean|zero", "error", CL | SIM | TR, \
      FEDC_SEC_DATA, "error|mean|zero", "a missing feature cell (empty, NA, N/A, NaN, NULL in " \
      "any case): an error naming file:line:column, the mean of the training rows' present " \
      "values (in a federation, round 0's federation-wide mean), or 0; the model stores the " \
      "values for fedc eval") \
    X(MISSING_INDICATORS, "missing-indicators", FEDC_OT_STR, 0, 0, NULL, NULL, CL | SIM | TR, \
      FEDC_SEC_DATA, "all|none|A,B", "with --missing mean|zero: which numeric features get a " \
      "0/1 column COL_MISSING right after them, 1 where COL was missing (unset: all; the same " \
      "for every client whatever its data holds)") \
    X(POSITIVE, "positive", FEDC_OT_STR, 0, 0, NULL, NULL, CL | SIM | TR | EV | SPL | REP, \
      FEDC_SEC_DATA, "VALUE", "a text label: VALUE is 1, any other text 0 (blanks around " \
      "cells ignored; a missing label is an error; fedc eval: unset, the model's)") \
    X(CATEGORICAL, "categorical", FEDC_OT_STR, 0, 0, NULL, NULL, CL | SIM | TR, FEDC_SEC_DATA, \
      "A,B", "text columns, each replaced by --hash-buckets one-hot columns COL=h0.. by feature " \
      "hashing (SipHash-2-4 of the trimmed text under --hash-key, modulo the buckets; no " \
      "vocabulary to share; a missing cell sets none)") \
    X(HASH_BUCKETS, "hash-buckets", FEDC_OT_INT, 2, 4096, NULL, "32", CL | SIM | TR, \
      FEDC_SEC_DATA, "N", "one-hot columns per --categorical column (a federation's clients " \
      "must agree: a client with another count, key or column list is refused at join)") \
    X(HASH_KEY, "hash-key", FEDC_OT_STR, 0, 0, NULL, "666564632063617465676f726963616c", \
      CL | SIM | TR, FEDC_SEC_DATA, "HEX", "the 16-byte SipHash key of --categorical, 32 hex " \
      "digits (default: the ASCII bytes of 'fedc categorical')") \
    X(FEATURES_SPEC, "features-spec", FEDC_OT_PATH, 0, 0, NULL, NULL, CL | SIM | TR, \
      FEDC_SEC_DATA, "FILE.json", "the spec written for this data by fedc features (its --spec-out): " \
      "stored in the model (a federation's clients must bring the same one)") \
    X(NAME, "name", FEDC_OT_STR, 0, 0, NULL, NULL, CO | CL | KG, FEDC_SEC_DATA, "NAME", \
      "this participant's name, 1..64 characters of A-Z a-z 0-9 . _ - (fedc-client, unset: the " \
      "key's name, with --insecure, the host name; fedc-coordinator: its name to --upstream, " \
      "the key's; fedc keygen: required, the key files' name, usually 'coordinator' for the " \
      "coordinator)") \
    X(TASK, "task", FEDC_OT_CHOICE, 0, 0, "auto|regression", "auto", CL | TR, FEDC_SEC_DATA, \
      "auto|regression", "auto detects binary/multiclass labels") \
    X(AUGMENT, "augment", FEDC_OT_STR, 0, 0, NULL, "none", CL | TR, FEDC_SEC_DATA, "KIND[:R]", \
      "add rare-class rows to the training rows (never to validation or test rows) until " \
      "positives/negatives = R (default 0.1): oversample, smote, noise or none; a client's never " \
      "leave its machine") \
    X(CLIENTS, "clients", FEDC_OT_INT, 2, 10000, NULL, NULL, SIM | SPL, FEDC_SEC_DATA, "N", \
      "number of clients, at most the number of rows (required, except with the scheme " \
      "column:NAME, where it must not be given, and fedc sim's --shards; fedc sim runs at most " \
      "1000)") \
    X(SPLIT, "split", FEDC_OT_STR, 0, 0, NULL, "iid", SIM, FEDC_SEC_DATA, "SCHEME", \
      "iid, stratified, dirichlet:ALPHA (label skew) or column:NAME (see fedc split --help)") \
    X(SCHEME, "scheme", FEDC_OT_STR, 0, 0, NULL, "iid", SPL, FEDC_SEC_DATA, "S", \
      "how rows are assigned to clients: iid, stratified, dirichlet:ALPHA or column:NAME " \
      "(below; fedc sim calls it --split)") \
    X(MIN_ROWS, "min-rows", FEDC_OT_INT, 1, 1000000000, NULL, "1", SPL, FEDC_SEC_DATA, "K", \
      "dirichlet only: draws are repeated (at most 100000 times) until every client has at " \
      "least K rows (1: no empty client; e.g. 10 when every client must be able to train)") \
    X(TEST_FRACTION, "test-fraction", FEDC_OT_REAL, 0, 0.9, NULL, "0.2", SIM | TR, FEDC_SEC_DATA, \
      "F", "held-out test share, stratified (fedc train: 0 for none, metrics on the training " \
      "rows; fedc sim needs a test set)") \
    X(SHARDS, "shards", FEDC_OT_STR, 0, 0, NULL, NULL, SIM | TUNE, FEDC_SEC_DATA, "A.csv,B.csv", \
      "given client files, one per client, named after the files (bytes a key's name cannot " \
      "hold made _: EDUCATION=1.csv is client EDUCATION_1; fedc sim: instead of one data " \
      "file, needs --test; fedc tune: required, every trial is a federation of them)") \
    X(TEST, "test", FEDC_OT_PATH, 0, 0, NULL, NULL, SIM, FEDC_SEC_DATA, "FILE.csv", \
      "the test set for --shards") \
    X(BANKS, "banks", FEDC_OT_INT, 1, 26, NULL, NULL, SYN, FEDC_SEC_DATA, "K", \
      "banks, bank-a, bank-b, ... (required)") \
    X(CUSTOMERS, "customers", FEDC_OT_INT, 10, 10000000, NULL, "5000", DEMO | SYN, FEDC_SEC_DATA, \
      "N", "customers per bank (5000: the handbook's size)") \
    /* 16: twice the 7-day delay before fraud labels are known, plus two (cmd_synth.c) */ \
    X(DAYS, "days", FEDC_OT_INT, 16, 3650, NULL, "100", DEMO | SYN, FEDC_SEC_DATA, "D", \
      "days simulated; the last max(7, D / 5) are the common test set, held out in time") \
    X(TERMINALS, "terminals", FEDC_OT_INT, 1, 20000000, NULL, NULL, SYN, FEDC_SEC_DATA, "M", \
      "terminals per bank (unset: 2 x the customers, the handbook's ratio)") \
    X(TEST_DAYS, "test-days", FEDC_OT_INT, 1, 3650, NULL, NULL, SYN, FEDC_SEC_DATA, "T", \
      "days held out at the end (unset: max(7, D / 5))") \
    X(RAW, "raw", FEDC_OT_FLAG, 0, 0, NULL, "false", SYN, FEDC_SEC_DATA, NULL, \
      "raw transactions as a bank exports them (all days; the fraud scenarios only in " \
      "truth.csv), for fedc features, instead of the features and a test.csv") \
    X(MODEL_FILE, "model", FEDC_OT_PATH, 0, 0, NULL, NULL, EV | REP | INSP | EXP | PRED, \
      FEDC_SEC_DATA, "FILE", "a saved model (required; fedc train's --out, fedc-coordinator's " \
      "--model-out)") \
    X(AGGREGATOR, "aggregator", FEDC_OT_CHOICE, 0, 0, \
      "mean|median|trimmed-mean|krum|multi-krum|norm-bound", "mean", CO | SIM, FEDC_SEC_AGG, \
      "NAME", "mean: FedAvg weighted by examples; median, trimmed-mean, krum, multi-krum need " \
      "each update (only with --secagg off; unweighted); norm-bound scales updates to L2 norm " \
      "<= --norm-bound (under secure aggregation the clients clip and the coordinator checks " \
      "the aggregate)") \
    X(TRIM_BETA, "trim-beta", FEDC_OT_REAL, 0, 0.499, NULL, "0.2", CO | SIM, FEDC_SEC_AGG, "B", \
      "trimmed mean: share dropped at each end (must exceed the share of bad clients)") \
    X(KRUM_F, "krum-f", FEDC_OT_INT, 0, 1000, NULL, "1", CO | SIM, FEDC_SEC_AGG, "F", \
      "Krum: bad clients tolerated; needs more than 2F+2 updates") \
    X(MULTI_KRUM_M, "multi-krum-m", FEDC_OT_INT, 1, 4096, NULL, NULL, CO | SIM, FEDC_SEC_AGG, \
      "M", "Multi-Krum: updates averaged (unset: updates - F)") \
    X(NORM_BOUND, "norm-bound", FEDC_OT_REAL_P, 0, 1e6, NULL, NULL, CO | SIM, FEDC_SEC_AGG, "C", \
      "the L2 bound of --aggregator norm-bound") \
    X(UPDATE_NORM_BOUND, "update-norm-bound", FEDC_OT_REAL_P, 0, 1e6, NULL, "16", CO | SIM, \
      FEDC_SEC_AGG, "B", "every client clips its update to L2 norm B and the coordinator " \
      "rejects an update or aggregate beyond it (--dp-clip or --norm-bound replace it)") \
    X(DP_CLIP, "dp-clip", FEDC_OT_REAL_P, 0, 1e6, NULL, NULL, CO | CL | SIM | TR, FEDC_SEC_DP, \
      "C", "clip norm. fedc-coordinator, fedc sim: client-level DP-FedAvg, clients scale their " \
      "update to L2 norm <= C and count once, the coordinator adds N(0, (zC)^2) to the sum; " \
      "fedc-client, fedc train: record-level DP-SGD (Abadi et al. 2016), every example's " \
      "gradient is clipped to C") \
    X(DP_NOISE, "dp-noise", FEDC_OT_REAL_P, 0, 1e4, NULL, NULL, CO | CL | SIM | TR, FEDC_SEC_DP, \
      "Z", "noise multiplier of --dp-clip (sd Z x C)") \
    X(TARGET_EPSILON, "target-epsilon", FEDC_OT_REAL_P, 0, 1e4, NULL, NULL, \
      CO | CL | SIM | TR | PRV, FEDC_SEC_DP, "E", "privacy budget: stop before a round would " \
      "exceed it; without --dp-noise, Z is the smallest that fits the planned rounds (fedc " \
      "train: epochs) in E; fedc privacy solves for that noise multiplier") \
    X(DP_DELTA, "dp-delta", FEDC_OT_REAL_P, 0, 0.5, NULL, "1e-05", CO | CL | SIM | TR, \
      FEDC_SEC_DP, "D", "delta of (epsilon, delta)") \
    X(DP_ADAPTIVE, "dp-adaptive", FEDC_OT_FLAG, 0, 0, NULL, "false", CO | SIM, FEDC_SEC_DP, NULL, \
      "adapt C towards the --dp-quantile of update norms (Andrew et al. 2021); the count is " \
      "noised too, within the same Z") \
    X(DP_QUANTILE, "dp-quantile", FEDC_OT_REAL_P, 0, 1, NULL, "0.5", CO | SIM, FEDC_SEC_DP, "G", \
      "target share of unclipped updates (--dp-adaptive)") \
    X(DP_CLIP_LR, "dp-clip-lr", FEDC_OT_REAL_P, 0, 10, NULL, "0.2", CO | SIM, FEDC_SEC_DP, "ETA", \
      "geometric step of C (--dp-adaptive)") \
    X(DP_COUNT_NOISE, "dp-count-noise", FEDC_OT_REAL_P, 0, 1e6, NULL, NULL, CO | SIM, \
      FEDC_SEC_DP, "S", "noise sd on the count of unclipped updates (unset: expected clients " \
      "per round / 20)") \
    X(DP_SAMPLING, "dp-sampling", FEDC_OT_CHOICE, 0, 0, "poisson|shuffle", "poisson", CL | TR, \
      FEDC_SEC_DP, "KIND", "DP-SGD batches: poisson (what the accountant assumes) or shuffle") \
    X(DP_STATE, "dp-state", FEDC_OT_PATH, 0, 0, NULL, NULL, CL, FEDC_SEC_DP, "FILE", \
      "the privacy spent so far, read at start and rewritten atomically every round, so a " \
      "restarted client keeps counting") \
    X(DP_SGD_CLIP, "dp-sgd-clip", FEDC_OT_REAL_P, 0, 1e6, NULL, NULL, SIM, FEDC_SEC_DP, "C", \
      "record-level DP-SGD in every client (fedc-client --dp-clip)") \
    X(DP_SGD_NOISE, "dp-sgd-noise", FEDC_OT_REAL_P, 0, 1e4, NULL, NULL, SIM, FEDC_SEC_DP, "S", \
      "the clients' DP-SGD noise multiplier (fedc-client --dp-noise)") \
    X(DP_SGD_EPSILON, "dp-sgd-epsilon", FEDC_OT_REAL_P, 0, 1e4, NULL, NULL, SIM, FEDC_SEC_DP, "E", \
      "each client's DP-SGD budget (fedc-client --target-epsilon)") \
    X(DP_SGD_DELTA, "dp-sgd-delta", FEDC_OT_REAL_P, 0, 0.5, NULL, NULL, SIM, FEDC_SEC_DP, "D", \
      "the clients' DP-SGD delta (fedc-client --dp-delta)") \
    X(DP_SGD_SAMPLING, "dp-sgd-sampling", FEDC_OT_CHOICE, 0, 0, "poisson|shuffle", NULL, SIM, \
      FEDC_SEC_DP, "KIND", "the clients' DP-SGD batches (fedc-client --dp-sampling)") \
    X(DP_SGD_STATE_DIR, "dp-sgd-state-dir", FEDC_OT_PATH, 0, 0, NULL, NULL, SIM, FEDC_SEC_DP, \
      "DIR", "each client keeps its privacy spent in DIR/NAME.dpstate (fedc-client --dp-state)") \
    X(Q, "q", FEDC_OT_REAL, 0, 1, NULL, NULL, PRV, FEDC_SEC_DP, "Q", \
      "sampling rate per step (required): clients per round / clients, or batch / rows for " \
      "DP-SGD") \
    X(SIGMA, "sigma", FEDC_OT_REAL_P, 0, 1e4, NULL, NULL, PRV, FEDC_SEC_DP, "S", \
      "noise multiplier, noise sd / clipping norm (what the other programs call --dp-noise)") \
    X(STEPS, "steps", FEDC_OT_REAL, 0, 1e12, NULL, NULL, PRV, FEDC_SEC_DP, "T", \
      "steps: rounds, or DP-SGD iterations (required)") \
    X(DELTA, "delta", FEDC_OT_REAL_P, 0, 0.5, NULL, NULL, PRV, FEDC_SEC_DP, "D", \
      "delta of (epsilon, delta), e.g. 1e-5 (required; the other programs' --dp-delta)") \
    X(ORDERS, "orders", FEDC_OT_CHOICE, 0, 0, "default|integer", "default", PRV, FEDC_SEC_DP, \
      "SET", "the RDP orders minimised over: default 1.25..10 in steps of 0.25, then 11..256; " \
      "integer 2..256") \
    X(ROUNDS, "rounds", FEDC_OT_INT, 1, 1000000, NULL, "20", CO | SIM | DEMO | TUNE, \
      FEDC_SEC_ROUNDS, "N", "training rounds (fedc tune: of a trial at the last rung)") \
    X(MIN_CLIENTS, "min-clients", FEDC_OT_INT, 1, 4096, NULL, NULL, CO, FEDC_SEC_ROUNDS, "N", \
      "clients that must join before round 0 starts (unset: 3 with secure aggregation, its " \
      "floor; 2 with --secagg off)") \
    X(MIN_FIT_CLIENTS, "min-fit-clients", FEDC_OT_INT, 1, 4096, NULL, NULL, CO | SIM, \
      FEDC_SEC_ROUNDS, "N", "results a round needs to count (unset: --min-clients)") \
    X(FRACTION_FIT, "fraction-fit", FEDC_OT_REAL_P, 0, 1, NULL, "1", CO | SIM, FEDC_SEC_ROUNDS, \
      "F", "share of live clients selected per round") \
    X(ROUND_TIMEOUT, "round-timeout", FEDC_OT_REAL_P, 0, 1e6, NULL, "300", CO | SIM, \
      FEDC_SEC_ROUNDS, "S", "seconds a round waits for results") \
    X(WAIT_TIMEOUT, "wait-timeout", FEDC_OT_REAL, 0, 1e7, NULL, "0", CO, FEDC_SEC_ROUNDS, "S", \
      "give up after waiting this long for enough clients (0: wait for ever)") \
    X(MAX_RETRIES, "max-retries", FEDC_OT_INT, 0, 1000000, NULL, "5", CO, FEDC_SEC_ROUNDS, "N", \
      "failed attempts of one round before giving up") \
    X(MODE, "mode", FEDC_OT_CHOICE, 0, 0, "sync|async", "sync", CO | SIM, FEDC_SEC_ROUNDS, \
      "sync|async", \
      "sync: rounds wait for every selected client; async: buffered asynchronous aggregation " \
      "(FedBuff): every idle client trains on the newest model, and a server step applies " \
      "whenever --buffer updates are in, each weighted by 1/sqrt(1 + its staleness); with " \
      "secure aggregation one session per buffer among the clients holding an update; " \
      "client-level DP charges each step unsampled (docs/architecture.md)") \
    X(BUFFER, "buffer", FEDC_OT_INT, 1, 4096, NULL, NULL, CO | SIM, FEDC_SEC_ROUNDS, "K", \
      "with --mode async: updates per server step (unset: --min-fit-clients; with secure " \
      "aggregation at least --secagg-min-neighbours)") \
    X(MAX_STALENESS, "max-staleness", FEDC_OT_INT, 0, 1000000, NULL, "10", CO | SIM, \
      FEDC_SEC_ROUNDS, \
      "S", "with --mode async: an update trained on a model more than S server steps old is " \
      "refused") \
    X(MODEL, "model", FEDC_OT_CHOICE, 0, 0, "mlp|external", "mlp", CO, FEDC_SEC_MODEL, "NAME", \
      "mlp: fedc's MLP; external: the clients bring a model of their own " \
      "(fedc/client_model.h), its parameter count and initial values come from the first client") \
    X(INIT_WEIGHTS, "init-weights", FEDC_OT_PATH, 0, 0, NULL, NULL, CO, FEDC_SEC_MODEL, "FILE", \
      "with --model external: the initial values instead, as raw little-endian float32") \
    X(LAYERS, "layers", FEDC_OT_LIST, 1, FEDC_MAX_WIDTH, NULL, "25", CO | SIM | TR, \
      FEDC_SEC_MODEL, "W,W", "hidden layer widths ('none' for a linear model; the default, " \
      "one layer of 25, from bench/defaults.sh: README \"Defaults\")") \
    X(ACTIVATION, "activation", FEDC_OT_CHOICE, 0, 0, "relu|leaky_relu|sigmoid|tanh", "relu", \
      CO | SIM | TR, FEDC_SEC_MODEL, "NAME", "hidden-layer activation") \
    X(SEED, "seed", FEDC_OT_U64, 0, 0, NULL, "1", CO | SIM | DEMO | TR | SPL | SYN | TUNE, \
      FEDC_SEC_MODEL, "N", "seed of every draw that need not be secret: initialisation, " \
      "shuffles, splits, dropout, the data fedc demo and fedc synth make, the configurations " \
      "fedc tune draws (the same seed and input give the same output)") \
    X(LOCAL_EPOCHS, "local-epochs", FEDC_OT_INT, 1, 10000, NULL, "2", CO | SIM, FEDC_SEC_TRAIN, \
      "N", "epochs over the local data per round") \
    X(EPOCHS, "epochs", FEDC_OT_INT, 1, 1000000, NULL, "20", TR, FEDC_SEC_TRAIN, "N", \
      "most epochs over the training rows (early stopping may end sooner; a federation counts " \
      "epochs per round, --local-epochs)") \
    X(BATCH, "batch", FEDC_OT_INT, 1, 1 << 20, NULL, "64", CO | SIM | TR, FEDC_SEC_TRAIN, "N", \
      "mini-batch size") \
    X(LR, "lr", FEDC_OT_REAL_P, 0, 100, NULL, "0.05", CO | SIM | TR, FEDC_SEC_TRAIN, "X", \
      "learning rate (the defaults fit the default --optimizer: 0.05 for a federation's SGD, " \
      "0.01 for fedc train's Adam; with --optimizer adam in a federation, e.g. 0.003)") \
    X(OPTIMIZER, "optimizer", FEDC_OT_CHOICE, 0, 0, "adam|sgd", "sgd", CO | SIM | TR, \
      FEDC_SEC_TRAIN, "NAME", "the optimiser (sgd: with momentum 0.9; in a federation, each " \
      "client's, see --optimizer-state)") \
    X(OPTIMIZER_STATE, "optimizer-state", FEDC_OT_CHOICE, 0, 0, "fresh|kept", "fresh", CO | SIM, \
      FEDC_SEC_TRAIN, "fresh|kept", "a client's optimiser state (Adam's moments, SGD's " \
      "momentum): started afresh every round, or kept from one round to the next (it stays on " \
      "the client: nothing more is sent, with or without secure aggregation)") \
    X(MOMENTUM, "momentum", FEDC_OT_REAL, 0, 0.9999, NULL, "0.9", TR, FEDC_SEC_TRAIN, "X", \
      "SGD momentum") \
    X(WEIGHT_DECAY, "weight-decay", FEDC_OT_REAL, 0, 1, NULL, "0", TR, FEDC_SEC_TRAIN, "X", \
      "decoupled weight decay (with adam: AdamW, e.g. 0.01)") \
    X(PROX_MU, "prox-mu", FEDC_OT_REAL, 0, 1e4, NULL, "0", CO | SIM, FEDC_SEC_TRAIN, "X", \
      "FedProx proximal weight (0: plain FedAvg)") \
    X(L2, "l2", FEDC_OT_REAL, 0, 1e4, NULL, "0", CO | TR, FEDC_SEC_TRAIN, "X", \
      "L2 penalty on weights") \
    X(L1, "l1", FEDC_OT_REAL, 0, 1e4, NULL, "0", TR, FEDC_SEC_TRAIN, "X", "L1 penalty on weights") \
    X(DROPOUT, "dropout", FEDC_OT_REAL, 0, 0.95, NULL, "0", CO | TR, FEDC_SEC_TRAIN, "P", \
      "dropout on hidden layers") \
    X(VAL_FRACTION, "val-fraction", FEDC_OT_REAL, 0, 0.9, NULL, "0.2", CO | SIM | TR | TUNE, \
      FEDC_SEC_TRAIN, "F", "share of the rows kept for validation (a federation: each " \
      "client's, for evaluation; fedc train: for early stopping and choosing a threshold)") \
    X(PATIENCE, "patience", FEDC_OT_INT, 0, 1000000, NULL, "5", CO | TR, FEDC_SEC_TRAIN, "N", \
      "stop after N epochs (fedc-coordinator: rounds, by --select-metric) without validation " \
      "improvement and keep the best weights (0: never; the round count becomes a maximum)") \
    X(STOP_METRIC, "stop-metric", FEDC_OT_CHOICE, 0, 0, "loss|roc_auc|pr_auc", "loss", TR, \
      FEDC_SEC_TRAIN, "NAME", "what early stopping watches on the validation rows (roc_auc " \
      "and pr_auc: binary labels)") \
    X(POS_WEIGHT, "pos-weight", FEDC_OT_REAL_P, 0, 1e6, "auto", "1", CO | SIM | TR | TUNE, \
      FEDC_SEC_TRAIN, "auto|X", "positive-class weight for binary labels; auto = negatives / " \
      "positives (over all clients; fedc train: of its training rows)") \
    X(THRESHOLD, "threshold", FEDC_OT_REAL, 0, 1, NULL, "0.5", CO | TR | EV | PRED, \
      FEDC_SEC_TRAIN, "X", "decision threshold for precision/recall (fedc eval, fedc predict: a " \
      "row is flagged when its score is at least X; unset: the model card's threshold, else " \
      "0.5)") \
    X(ALERT_BUDGET, "alert-budget", FEDC_OT_REAL_P, 0, 1, NULL, "0.005", \
      CO | SIM | DEMO | TR | REP | PRED, FEDC_SEC_TRAIN, "F", "the share F of rows with the " \
      "highest scores that is flagged (binary labels: the fraud team's review budget): " \
      "precision and recall are also reported there; fedc train instead chooses its threshold " \
      "on the validation rows so that at most F is flagged (unset: the threshold as given); " \
      "fedc predict: the threshold that flags at most F of this file's rows (reads it 3 times)") \
    X(MIN_PRECISION, "min-precision", FEDC_OT_REAL_P, 0, 1, NULL, NULL, TR, FEDC_SEC_TRAIN, "X", \
      "choose the lowest threshold whose validation precision is at least X (the most recall " \
      "at that precision)") \
    X(CARD_PRECISION, "card-precision", FEDC_OT_INT, 1, 1000000, NULL, NULL, EV, FEDC_SEC_TRAIN, \
      "K", "also card precision@K: each day the K cards with the highest score, the share of " \
      "them with a fraud that day") \
    X(CARD_COLUMN, "card-column", FEDC_OT_STR, 0, 0, NULL, "CUSTOMER_ID", EV, FEDC_SEC_TRAIN, \
      "NAME", "the card id column of card precision (as fedc synth writes it)") \
    X(DAY_COLUMN, "day-column", FEDC_OT_STR, 0, 0, NULL, "TX_TIME_DAYS", EV, FEDC_SEC_TRAIN, \
      "NAME", "the day column of card precision (as fedc synth writes it)") \
    X(SERVER_OPT, "server-opt", FEDC_OT_CHOICE, 0, 0, "fedavg|fedavgm|fedadam", "fedavg", \
      CO | SIM, FEDC_SEC_SERVER, "NAME", "the server optimiser") \
    X(SERVER_LR, "server-lr", FEDC_OT_REAL_P, 0, 100, NULL, NULL, CO | SIM, FEDC_SEC_SERVER, "X", \
      "server learning rate (unset: 1 for fedavg/fedavgm, 0.01 for fedadam)") \
    X(SERVER_MOMENTUM, "server-momentum", FEDC_OT_REAL, 0, 0.999, NULL, NULL, CO, \
      FEDC_SEC_SERVER, "X", "FedAvgM momentum (unset: 0.9)") \
    X(MODEL_OUT, "model-out", FEDC_OT_PATH, 0, 0, NULL, NULL, CO, FEDC_SEC_OUT, "PATH", \
      "final global model (core/nn format, read by fedc eval)") \
    X(BEST_MODEL_OUT, "best-model-out", FEDC_OT_PATH, 0, 0, NULL, NULL, CO, FEDC_SEC_OUT, \
      "PATH", "the model of the best round so far by --select-metric, rewritten (atomically) " \
      "whenever a round beats it") \
    X(SELECT_METRIC, "select-metric", FEDC_OT_CHOICE, 0, 0, \
      "auto|pr_auc|roc_auc|loss|accuracy|macro_f1|rmse|r2", "auto", CO, FEDC_SEC_OUT, "METRIC", \
      "the federated validation metric that picks the best round (auto: pr_auc for binary " \
      "labels, accuracy for multiclass, rmse for regression)") \
    X(METRICS_JSON, "metrics-json", FEDC_OT_PATH, 0, 0, NULL, NULL, CO | CL | SIM | TR | EV, \
      FEDC_SEC_OUT, "PATH", "append one JSON line per round (the coordinator's: global " \
      "metrics; a client's: its local training); fedc train and fedc eval write their test " \
      "metrics as one JSON object instead (the file replaced)") \
    X(METRICS, "metrics", FEDC_OT_PATH, 0, 0, NULL, NULL, REP, FEDC_SEC_DATA, "FILE.jsonl", \
      "the coordinator's per-round metrics (required; what it wrote with --metrics-json)") \
    X(METRICS_LISTEN, "metrics-listen", FEDC_OT_STR, 0, 0, NULL, NULL, CO | CL, FEDC_SEC_OUT, \
      "ADDR:PORT", "serve over HTTP: Prometheus metrics (/metrics), /healthz, /readyz and, on " \
      "the coordinator, a live status page (/); ADDR left out (:9100): 127.0.0.1; port 0: any " \
      "free port (logged); unset: off") \
    X(CHECKPOINT_DIR, "checkpoint-dir", FEDC_OT_PATH, 0, 0, NULL, NULL, CO, FEDC_SEC_OUT, "DIR", \
      "checkpoint after every round (atomic)") \
    X(RESUME, "resume", FEDC_OT_FLAG, 0, 0, NULL, "false", CO, FEDC_SEC_OUT, NULL, \
      "continue from the checkpoint in --checkpoint-dir if there is one") \
    X(SUMMARY_JSON, "summary-json", FEDC_OT_PATH, 0, 0, NULL, NULL, SIM, FEDC_SEC_OUT, "PATH", \
      "the final table as one JSON object") \
    X(REPORT, "report", FEDC_OT_PATH, 0, 0, NULL, NULL, SIM, FEDC_SEC_OUT, "PATH", \
      "a self-contained HTML report (binary labels)") \
    X(WORK_DIR, "work-dir", FEDC_OT_PATH, 0, 0, NULL, NULL, SIM, FEDC_SEC_OUT, "DIR", \
      "keep the client files, model and logs here (unset: a temporary directory, removed)") \
    X(BASELINES, "baselines", FEDC_OT_CHOICE, 0, 0, "all|central|none", "all", SIM, FEDC_SEC_OUT, \
      "WHICH", "trained next to the federation: all (centralised and each client alone), " \
      "central or none") \
    X(METRIC, "metric", FEDC_OT_CHOICE, 0, 0, "pr_auc|roc_auc|loss", "pr_auc", TUNE, \
      FEDC_SEC_SEARCH, "NAME", "the federated validation metric that judges a trial (its best " \
      "round; pr_auc and roc_auc: binary labels)") \
    X(TRIALS, "trials", FEDC_OT_INT, 1, 10000, NULL, "16", TUNE, FEDC_SEC_SEARCH, "N", \
      "configurations drawn (the first is the coordinator's defaults)") \
    X(ETA, "eta", FEDC_OT_INT, 2, 16, NULL, "2", TUNE, FEDC_SEC_SEARCH, "ETA", \
      "successive halving: each rung runs ETA times the rounds of the one before and keeps the " \
      "best 1/ETA of its trials (up to 3 rungs, the last of --rounds)") \
    X(JOBS, "jobs", FEDC_OT_INT, 1, 256, NULL, "1", TUNE, FEDC_SEC_SEARCH, "J", \
      "trials run at once (each a coordinator and one single-threaded client per shard)") \
    X(BUDGET, "budget", FEDC_OT_REAL_P, 0, 1e7, NULL, NULL, TUNE, FEDC_SEC_SEARCH, "S", \
      "wall-clock seconds for the whole search: then no trial starts, running ones are stopped " \
      "and the best so far is reported (unset: no limit)") \
    X(OUT, "out", FEDC_OT_PATH, 0, 0, NULL, NULL, \
      DEMO | TR | SPL | KG | SYN | REP | PROV | FEAT | EXP | PRED | TUNE, FEDC_SEC_OUT, "PATH", \
      "where the output goes: fedc demo, split, synth, keygen: a directory, created if missing " \
      "(fedc demo reuses it when run again); fedc provision: the kits' directory (required; it " \
      "must not exist, or be empty, except with --add); fedc train: the model file (none when " \
      "unset); fedc report: the HTML page; fedc features, fedc predict: the CSV written " \
      "(atomically); fedc export: the file written (atomically, required); fedc tune: the best " \
      "configuration as a [coordinator] config file (atomically, required)") \
    X(FORMAT, "format", FEDC_OT_CHOICE, 0, 0, "onnx", "onnx", EXP, FEDC_SEC_OUT, "onnx", \
      "the format written: onnx (ONNX IR version 7, operator set 13)") \
    X(KEEP, "keep", FEDC_OT_STR, 0, 0, NULL, NULL, PRED, FEDC_SEC_OUT, "COL,...", \
      "columns copied into every output row before the score, byte for byte as in the input " \
      "(identifiers; the label too, if wanted)") \
    X(SKIP_BAD, "skip-bad", FEDC_OT_FLAG, 0, 0, NULL, "false", PRED, FEDC_SEC_OUT, NULL, \
      "write bad rows to --rejects (with the reason) and go on, instead of stopping at the " \
      "first with exit 2; the count is printed at the end") \
    X(REJECTS, "rejects", FEDC_OT_PATH, 0, 0, NULL, NULL, PRED, FEDC_SEC_OUT, "FILE", \
      "the rejected rows of --skip-bad as CSV: line, column, reason, record (written " \
      "atomically; required with --skip-bad)") \
    X(FORCE, "force", FEDC_OT_FLAG, 0, 0, NULL, "false", SPL | KG, FEDC_SEC_OUT, NULL, \
      "replace what an earlier run left in --out (fedc split: shard files; fedc keygen: the " \
      "key files of the same name)") \
    X(TITLE, "title", FEDC_OT_STR, 0, 0, NULL, "fedc federation", REP, FEDC_SEC_OUT, "TEXT", \
      "the page's title") \
    X(LOG_LEVEL, "log-level", FEDC_OT_CHOICE, 0, 0, "debug|info|warn|error", "info", CO | CL, \
      FEDC_SEC_OUT, "LEVEL", "the least severe log lines written on stderr") \
    X(LOG_FORMAT, "log-format", FEDC_OT_CHOICE, 0, 0, "text|json", "text", CO | CL, FEDC_SEC_OUT, \
      "FORMAT", "log lines as text (RFC 3339 time, level, component, message) or one JSON " \
      "object per line") \
    X(QUIET, "quiet", FEDC_OT_FLAG, 0, 0, NULL, "false", CO | CL | SIM | TR | SPL | TUNE, \
      FEDC_SEC_OUT, NULL, "no progress lines on stdout (per round; fedc train: per epoch; fedc " \
      "split: the summary; fedc tune: per trial)") \
    X(THREADS, "threads", FEDC_OT_INT, 1, 4096, NULL, NULL, CL | SIM | TR | EV | PRED, \
      FEDC_SEC_RUN, "N", \
      "OpenMP threads for training and scoring (unset: OMP_NUM_THREADS or all cores; fedc " \
      "sim: per client and for the baselines)")
/* clang-format on */

/* Where a program's default differs from the table's, and why: X(program, option id, value). */
/* clang-format off */
#define FEDC_OPTION_DEFAULTS(X) \
    /* the demo's federation of three banks (SGD, raw-data features) still gains after 30 */ \
    /* rounds; at 50 it is within 0.95x of centralised training (README "The demo") */ \
    X(DEMO, ROUNDS, "50") \
    /* fedc sim runs a client process per shard on one machine: one thread each */ \
    X(SIM, THREADS, "1") \
    /* a federation runs its --rounds unless early stopping is asked for */ \
    X(COORD, PATIENCE, "0") \
    /* centralised training with early stopping is best with Adam (bench/defaults.sh: SGD with */ \
    /* momentum is what a federation's skewed clients need, Adam what one data set does best with) */ \
    X(TRAIN, OPTIMIZER, "adam") \
    X(TRAIN, LR, "0.01") \
    /* fedc tune runs every federation on this one machine, where secure aggregation protects */ \
    /* nothing and its secret rounding makes two runs of one configuration differ */ \
    X(TUNE, SECAGG, "off") \
    /* NULL: no default, the program derives the value or requires it. */ \
    /* demo writes into a directory of its own unless told otherwise */ \
    X(DEMO, OUT, "demo-out") \
    /* fedc train holds out a test part of one file too; 15% with --val-fraction's 20% keeps */ \
    /* 65% for training (sim's 20% test share is held out of a whole federation's data) */ \
    X(TRAIN, TEST_FRACTION, "0.15") \
    /* fedc train picks its threshold at the budget only when asked (else --threshold) */ \
    X(TRAIN, ALERT_BUDGET, NULL) \
    /* a synth command line states the size and seed of the files it made */ \
    X(SYNTH, CUSTOMERS, NULL) \
    X(SYNTH, DAYS, NULL) \
    X(SYNTH, SEED, NULL) \
    /* fedc predict: unset means the model card's threshold (or --alert-budget) */ \
    X(PREDICT, THRESHOLD, NULL) \
    X(PREDICT, ALERT_BUDGET, NULL)
/* clang-format on */

/* Options without an environment variable, because FEDC_<NAME> already means something else:
 * X(option id, what the variable is, for --help). Read as fedc provision's --coordinator, an
 * operator's FEDC_COORDINATOR=/opt/fedc/bin/fedc-coordinator (for the kits' start.sh) would become
 * the federation's address. The parser reads no variable for them, fedc_opts_unsetenv leaves
 * theirs alone, and --help says so. */
#define FEDC_OPTION_NO_ENV(X)                                                                      \
    X(COORD_ADDR, "the fedc-coordinator program that the kits' start.sh and fedc sim run")

/* A program's bare command-line argument and the option it sets: X(program, option id). Only one
 * is taken; any other bare argument is an error. fedc health URL predates the table and is what
 * deploy/docker-compose.yml's health checks run; --url URL means the same. */
#define FEDC_OPTION_POSITIONAL(X) X(HEALTH, URL) X(INSPECT, MODEL_FILE)

typedef enum fedc_opt_id {
#define FEDC_OPT_ENUM_(id, ...) FEDC_O_##id,
    FEDC_OPTIONS(FEDC_OPT_ENUM_)
#undef FEDC_OPT_ENUM_
        FEDC_O_COUNT
} fedc_opt_id;

/* One table entry. */
typedef struct fedc_opt_def {
    const char *name;
    fedc_opt_type type;
    double lo, hi;
    const char *words, *def;
    unsigned progs;
    fedc_opt_section section;
    const char *metavar, *help;
} fedc_opt_def;

extern const fedc_opt_def fedc_opt_table[FEDC_O_COUNT];

typedef enum fedc_opt_src {
    FEDC_SRC_DEFAULT,
    FEDC_SRC_FILE,
    FEDC_SRC_ENV,
    FEDC_SRC_FLAG
} fedc_opt_src;

/* An option's effective value and where it came from. */
typedef struct fedc_opt_val {
    const char *text; /* as given (NULL: unset, no default) */
    fedc_opt_src src;
    const char *file; /* FEDC_SRC_FILE: the file and line */
    int line;
    long i;                    /* int, flag (0/1), choice (index in words; -1: a number given) */
    unsigned long long u;      /* u64 */
    double r;                  /* real */
    int list[FEDC_MAX_LAYERS]; /* list */
    int n_list;
} fedc_opt_val;

/* A program's options after fedc_opts_parse. */
typedef struct fedc_opts {
    unsigned prog;   /* FEDC_PROG_* */
    const char *cmd; /* for messages: "fedc-coordinator", "sim" (printed as "fedc sim") */
    fedc_opt_val v[FEDC_O_COUNT];
} fedc_opts;

/* What a program adds to the generated --help. */
typedef struct fedc_prog_help {
    const char *usage; /* "usage: fedc-coordinator --bind ENDPOINT [options]" */
    const char *intro; /* paragraph after the usage line */
    const char *outro; /* paragraph at the end (exit status, ...) */
} fedc_prog_help;

/* Reads prog's options (one FEDC_PROG_* bit) from argv[1..], the environment, --config FILE and
 * the defaults. Returns -1 when o is ready, FEDC_EXIT_OK after --help, --version or
 * --print-config (printed on stdout), FEDC_EXIT_USAGE after a message on stderr naming the option,
 * what was expected, what was found and where (flag, environment variable or file:line). Strings
 * in o point into argv, the environment or memory kept for the process (file values). */
int fedc_opts_parse(fedc_opts *o, unsigned prog, int argc, char **argv, const fedc_prog_help *h);

/* Whether an option was given (flag, environment or file), not left at its default. */
static inline int fedc_opt_given(const fedc_opts *o, fedc_opt_id id) {
    return o->v[id].src != FEDC_SRC_DEFAULT;
}
/* Whether it has a value (given, or a default). */
static inline int fedc_opt_has(const fedc_opts *o, fedc_opt_id id) {
    return o->v[id].text != NULL;
}

/* Where a given option came from, for a message about it: " (environment FEDC_X)",
 * " (FILE:LINE)", or "" for a flag or a default. Writes into out and returns it. */
const char *fedc_opt_origin(char *out, size_t cap, const fedc_opts *o, fedc_opt_id id);

/* The environment variable of an option: FEDC_ + upper-case name, '-' as '_'. */
void fedc_opt_env_name(char *out, size_t cap, const char *name);

/* Whether the parser reads an environment variable for id (all but FEDC_OPTION_NO_ENV's). */
int fedc_opt_has_env(fedc_opt_id id);

/* The table's default of id for prog (FEDC_OPTION_DEFAULTS first), or NULL. */
const char *fedc_opt_default(fedc_opt_id id, unsigned prog);

/* The range or allowed words of an option as --help states them, e.g. "1..1000000",
 * "0 < X <= 100", "auto or 0 < X <= 1e+06", "on|off", "widths in 1..65536"; "" when none. */
void fedc_opt_range(char *out, size_t cap, fedc_opt_id id);

/* The section name and display name of prog ("coordinator", "fedc-coordinator"). */
const char *fedc_prog_section(unsigned prog);
const char *fedc_prog_display(unsigned prog);

/* Removes every option's FEDC_ variable from the environment: fedc sim calls it in the processes
 * it starts, which get their options as flags (a FEDC_DP_CLIP meant for sim's client-level DP must
 * not turn on a client's DP-SGD). */
void fedc_opts_unsetenv(void);

/* --version's text: program, version, git commit, build type, instruction sets. */
void fedc_print_version(FILE *f, const char *display);

#endif
