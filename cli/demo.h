/* fedc demo's features step (demo_features.c): every bank turns its raw transactions (fedc synth
 * --raw) into window features with fedc features and one spec, then splits them in time into its
 * training rows and its share of the common test set. */
#ifndef FEDC_CLI_DEMO_H
#define FEDC_CLI_DEMO_H

/* The demo's one spec (issue 16): the customer's spending and the terminal's risk over 1, 7 and
 * 30 days, the risk only from labels at least 7 days old; with --calendar, TX_WEEKEND and
 * TX_NIGHT. */
#define DEMO_TIME_COL "TX_DATETIME"
#define DEMO_WINDOW                                                                                \
    "CUSTOMER_ID:1,7,30:count,mean=TX_AMOUNT;TERMINAL_ID:1,7,30:count,rate=TX_FRAUD:delay=7"
/* What the model does not train on: identifiers and the time. */
#define DEMO_DROP "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID"

/* 1 when feat_dir holds the feature files of an earlier run whose marker (feat_dir/features.json,
 * written last) is exactly `marker`, else 0. */
int demo_features_reusable(const char *feat_dir, const char *marker);

/* For each of n_banks banks, in a child process of its own (the banks work side by side, as on
 * their own machines): fedc features on data_dir/bank-X.csv over all its days, so that every row
 * has its bank's history, then the rows before test_from ("YYYY-MM-DD HH:MM:SS") to
 * feat_dir/bank-X.csv (its training data) and the others to its part of the common test set.
 * The parts become feat_dir/test.csv; `marker` goes to feat_dir/features.json last. Every file is
 * written atomically. Returns an exit code (the first failing bank's). */
int demo_make_features(const char *data_dir, const char *feat_dir, int n_banks,
                       const char *test_from, const char *marker);

#endif
