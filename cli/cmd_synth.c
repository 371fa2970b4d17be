/* fedc synth: card transactions of K banks, modelled on the transaction data simulator of the
 * open fraud-detection handbook (Le Borgne, Siblini, Lebichot, Bontempi, "Reproducible Machine
 * Learning for Credit Card Fraud Detection - Practical Handbook", 2022, chapter 3.2), written here
 * from its published description:
 *
 *   customers  location uniform on a 100 x 100 grid; mean amount ~ U(5, 100), std = mean / 2;
 *              transactions per day ~ Poisson(m), m ~ U(0, 4)
 *   terminals  location uniform on the grid; a customer uses the terminals within radius 5
 *   a day      for each customer, Poisson(m) transactions at a terminal drawn uniformly from its
 *              list, time of day ~ N(12 h, 20000 s) (draws outside the day are dropped), amount
 *              ~ N(mean, std), a negative draw replaced by U(0, 2 mean), rounded to cents
 *   fraud      (1) every amount above 220; (2) each day some terminals are compromised and all
 *              their transactions in the next 28 days are fraud (the handbook: 2 of 10,000
 *              terminals a day); (3) each day some customers are compromised and a third of their
 *              transactions in the next 14 days have their amount multiplied by 5 and are fraud
 *              (3 of 5,000 customers a day). A later scenario overrides an earlier label.
 *   features   amount; weekend; night (hour <= 6); per customer the number and mean amount of its
 *              transactions in the last 1, 7 and 30 days (the current one included); per terminal
 *              the number of transactions and the fraud rate in a 1, 7 and 30-day window ending
 *              7 days before the current day (the delay before fraud labels are known). The
 *              terminal windows are whole days (the handbook uses exact times).
 *
 * Banks own disjoint customers and terminals (each its own grid), with the rates above scaled to
 * their size. Every bank sees scenario 1; the other two are mixed so that no bank sees all of
 * fraud (issue 16 fixed these mixes before anyone measured): bank-a (and every third bank after
 * it) compromised terminals but no compromised cards, bank-b compromised cards but no compromised
 * terminals, bank-c neither.
 *
 * Two outputs. By default the features above are computed here and the last --test-days days of
 * every bank form one common test.csv, held out in time. With --raw the banks get what a bank
 * exports instead: one row per transaction (TRANSACTION_ID, TX_DATETIME from 2018-04-01 00:00:00,
 * the handbook's start, a Sunday; CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD) over all days,
 * since a bank's window features need its history before any day it scores; the scenario of each
 * fraud goes only to truth.csv, never into a bank's file, and synth.json names the day the common
 * test period starts (fedc demo computes the features with fedc features and splits there). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fedc/modelfile.h"
#include "fedc/rng.h"

#define CMD "synth"
#define GRID 100.0
#define RADIUS 5.0
#define DELAY 7
#define MAX_BANKS 26

static const fedc_prog_help g_help = {
    "usage: fedc synth --banks K --customers N --days D --seed S --out DIR [--raw] [options]",
    "Generates card transactions for K banks (seeded, reproducible: the same seed gives the\n"
    "same files, byte for byte), modelled on the simulator of the open fraud-detection\n"
    "handbook (Le Borgne et al., 2022): customers with spending profiles and locations,\n"
    "terminals, three fraud scenarios (1: amounts above 220; 2: compromised terminals for\n"
    "28 days; 3: compromised cards for 14 days with amounts x5), and the usual features.\n"
    "Writes DIR/bank-a.csv, bank-b.csv, ... (the first D - T days of each bank), DIR/test.csv\n"
    "(the last T days of all banks, held out in time) and DIR/synth.json (rows, frauds and\n"
    "scenario counts per file). Columns: CUSTOMER_ID and TX_TIME_DAYS (for per-card metrics;\n"
    "drop them for training), 15 features, TX_FRAUD (the label).\n"
    "\n"
    "With --raw, raw transactions as a bank exports them instead, for fedc features:\n"
    "DIR/bank-a.csv, ... hold all D days of each bank (its features need its history) with\n"
    "the columns TRANSACTION_ID (unique across banks), TX_DATETIME (YYYY-MM-DD HH:MM:SS from\n"
    "2018-04-01 00:00:00, a Sunday), CUSTOMER_ID, TERMINAL_ID (banks own disjoint ones),\n"
    "TX_AMOUNT, TX_FRAUD; DIR/truth.csv gives the scenario of every fraud (TRANSACTION_ID,\n"
    "FILE, TX_FRAUD_SCENARIO) and is the only file that holds it; synth.json says from which\n"
    "day on (test_from) the rows form the common test period (fedc demo splits there after\n"
    "computing the features). No test.csv is written.",
    "Scenario mixes: every bank sees scenario 1; bank-a also compromised terminals and no\n"
    "compromised cards, bank-b compromised cards and no compromised terminals, bank-c\n"
    "neither (then again for bank-d, e, f, ...)."};

typedef struct tx {
    int32_t day, secs;  /* day since the start, second of the day */
    int32_t cust, term; /* bank-local indices */
    float amount;
    uint8_t fraud, scen;
    float c_nb[3], c_avg[3]; /* customer windows of 1, 7, 30 days */
} tx;

typedef struct bank {
    int idx, n_cust, n_term, days;
    double s2_per_day, s3_per_day; /* compromised terminals / customers a day */
    float *cx, *cy, *mean, *sd, *rate;
    float *tx_, *ty;
    int **term_list; /* per customer: terminals within RADIUS, term_n entries */
    int *term_n;
    uint8_t *comp_t, *comp_c; /* (n x days) compromised on that day */
    tx *rows;
    size_t n_rows, cap;
    uint32_t *t_cnt, *t_fraud; /* (n_term x (days + 1)) prefix sums over days */
} bank;

static int cmp_tx_time(const void *a, const void *b) {
    const tx *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    if (x->secs != y->secs)
        return x->secs < y->secs ? -1 : 1;
    return (x->cust > y->cust) - (x->cust < y->cust);
}

static int poisson(fedc_rng *r, double lambda) {
    /* Knuth's method: fine for the small means used here. */
    double l = exp(-lambda), p = 1.0;
    int k = 0;
    do {
        k++;
        p *= (double)fedc_rng_uniform(r);
    } while (p > l && k < 1000);
    return k - 1;
}

static double unif(fedc_rng *r, double lo, double hi) {
    return lo + (hi - lo) * (double)fedc_rng_uniform(r);
}

static void bank_free(bank *b) {
    free(b->cx);
    free(b->cy);
    free(b->mean);
    free(b->sd);
    free(b->rate);
    free(b->tx_);
    free(b->ty);
    if (b->term_list)
        for (int i = 0; i < b->n_cust; i++)
            free(b->term_list[i]);
    free(b->term_list);
    free(b->term_n);
    free(b->comp_t);
    free(b->comp_c);
    free(b->rows);
    free(b->t_cnt);
    free(b->t_fraud);
}

/* Customers, terminals and who uses which (terminals bucketed in cells of RADIUS). */
static int make_profiles(bank *b, uint64_t seed) {
    int nc = b->n_cust, nt = b->n_term;
    b->cx = malloc(4 * (size_t)nc);
    b->cy = malloc(4 * (size_t)nc);
    b->mean = malloc(4 * (size_t)nc);
    b->sd = malloc(4 * (size_t)nc);
    b->rate = malloc(4 * (size_t)nc);
    b->tx_ = malloc(4 * (size_t)nt);
    b->ty = malloc(4 * (size_t)nt);
    b->term_list = calloc((size_t)nc, sizeof *b->term_list);
    b->term_n = calloc((size_t)nc, sizeof *b->term_n);
    if (!b->cx || !b->cy || !b->mean || !b->sd || !b->rate || !b->tx_ || !b->ty || !b->term_list ||
        !b->term_n)
        return -1;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(seed, (uint64_t)b->idx, 1, 0));
    for (int i = 0; i < nc; i++) {
        b->cx[i] = (float)unif(&r, 0, GRID);
        b->cy[i] = (float)unif(&r, 0, GRID);
        b->mean[i] = (float)unif(&r, 5, 100);
        b->sd[i] = b->mean[i] / 2;
        b->rate[i] = (float)unif(&r, 0, 4);
    }
    fedc_rng_init(&r, fedc_rng_key(seed, (uint64_t)b->idx, 2, 0));
    for (int t = 0; t < nt; t++) {
        b->tx_[t] = (float)unif(&r, 0, GRID);
        b->ty[t] = (float)unif(&r, 0, GRID);
    }
    enum { CELLS = 20 }; /* GRID / RADIUS */
    int *head = malloc(sizeof(int) * CELLS * CELLS), *next = malloc(sizeof(int) * (size_t)nt);
    int *tmp = malloc(sizeof(int) * (size_t)nt);
    if (!head || !next || !tmp) {
        free(head);
        free(next);
        free(tmp);
        return -1;
    }
    for (int c = 0; c < CELLS * CELLS; c++)
        head[c] = -1;
    for (int t = nt - 1; t >= 0; t--) {
        int gx = (int)(b->tx_[t] / RADIUS), gy = (int)(b->ty[t] / RADIUS);
        gx = gx < CELLS ? gx : CELLS - 1;
        gy = gy < CELLS ? gy : CELLS - 1;
        next[t] = head[gy * CELLS + gx];
        head[gy * CELLS + gx] = t;
    }
    int rc = 0;
    for (int i = 0; i < nc && !rc; i++) {
        int gx = (int)(b->cx[i] / RADIUS), gy = (int)(b->cy[i] / RADIUS), k = 0;
        for (int dy = -1; dy <= 1; dy++) {
            for (int dx = -1; dx <= 1; dx++) {
                int x = gx + dx, y = gy + dy;
                if (x < 0 || y < 0 || x >= CELLS || y >= CELLS)
                    continue;
                for (int t = head[y * CELLS + x]; t >= 0; t = next[t]) {
                    double ex = b->tx_[t] - b->cx[i], ey = b->ty[t] - b->cy[i];
                    if (ex * ex + ey * ey < RADIUS * RADIUS)
                        tmp[k++] = t;
                }
            }
        }
        /* Ascending terminal order, whatever the bucket walk. */
        for (int a = 1; a < k; a++) {
            int v = tmp[a], j = a - 1;
            while (j >= 0 && tmp[j] > v) {
                tmp[j + 1] = tmp[j];
                j--;
            }
            tmp[j + 1] = v;
        }
        b->term_n[i] = k;
        if (k) {
            b->term_list[i] = malloc(sizeof(int) * (size_t)k);
            if (!b->term_list[i])
                rc = -1;
            else
                memcpy(b->term_list[i], tmp, sizeof(int) * (size_t)k);
        }
    }
    free(head);
    free(next);
    free(tmp);
    return rc;
}

/* Which terminals and customers are compromised on which days (scenarios 2 and 3). */
static int make_compromises(bank *b, uint64_t seed) {
    size_t d = (size_t)b->days;
    b->comp_t = calloc((size_t)b->n_term * d, 1);
    b->comp_c = calloc((size_t)b->n_cust * d, 1);
    if (!b->comp_t || !b->comp_c)
        return -1;
    fedc_rng r;
    fedc_rng_init(&r, fedc_rng_key(seed, (uint64_t)b->idx, 3, 0));
    for (int day = 0; day < b->days; day++) {
        int k = b->s2_per_day > 0 ? poisson(&r, b->s2_per_day) : 0;
        for (int j = 0; j < k; j++) {
            uint32_t t = fedc_rng_below(&r, (uint32_t)b->n_term);
            for (int x = day; x < day + 28 && x < b->days; x++)
                b->comp_t[(size_t)t * d + (size_t)x] = 1;
        }
        k = b->s3_per_day > 0 ? poisson(&r, b->s3_per_day) : 0;
        for (int j = 0; j < k; j++) {
            uint32_t c = fedc_rng_below(&r, (uint32_t)b->n_cust);
            for (int x = day; x < day + 14 && x < b->days; x++)
                b->comp_c[(size_t)c * d + (size_t)x] = 1;
        }
    }
    return 0;
}

static int push(bank *b, const tx *t) {
    if (b->n_rows == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        tx *nr = realloc(b->rows, cap * sizeof *nr);
        if (!nr)
            return -1;
        b->rows = nr;
        b->cap = cap;
    }
    b->rows[b->n_rows++] = *t;
    return 0;
}

/* Transactions customer by customer (each in time order, so the customer windows are one
 * sliding pass), labelled by the three scenarios. */
static int make_transactions(bank *b, uint64_t seed) {
    static const int win[3] = {1, 7, 30};
    size_t d = (size_t)b->days;
    for (int c = 0; c < b->n_cust; c++) {
        fedc_rng r;
        fedc_rng_init(&r, fedc_rng_key(seed, (uint64_t)b->idx, 4, (uint64_t)c));
        size_t first = b->n_rows;
        for (int day = 0; day < b->days; day++) {
            int n = poisson(&r, b->rate[c]);
            size_t day_first = b->n_rows;
            for (int k = 0; k < n; k++) {
                double secs = 43200.0 + 20000.0 * (double)fedc_rng_normal(&r);
                double amount = b->mean[c] + b->sd[c] * (double)fedc_rng_normal(&r);
                if (amount < 0)
                    amount = unif(&r, 0, 2.0 * b->mean[c]);
                uint32_t pick = b->term_n[c] ? fedc_rng_below(&r, (uint32_t)b->term_n[c]) : 0;
                double u3 = (double)fedc_rng_uniform(&r);
                if (secs <= 0 || secs >= 86400 || !b->term_n[c])
                    continue; /* outside the day, or no terminal nearby: no transaction */
                tx t;
                memset(&t, 0, sizeof t);
                t.day = day;
                t.secs = (int32_t)secs;
                t.cust = c;
                t.term = b->term_list[c][pick];
                t.amount = (float)(round(amount * 100.0) / 100.0);
                if (t.amount > 220.0f) {
                    t.fraud = 1;
                    t.scen = 1;
                }
                if (b->comp_t[(size_t)t.term * d + (size_t)day]) {
                    t.fraud = 1;
                    t.scen = 2;
                }
                if (b->comp_c[(size_t)c * d + (size_t)day] && u3 < 1.0 / 3.0) {
                    t.amount = (float)(round((double)t.amount * 5.0 * 100.0) / 100.0);
                    t.fraud = 1;
                    t.scen = 3;
                }
                if (push(b, &t))
                    return -1;
            }
            if (b->n_rows - day_first > 1)
                qsort(b->rows + day_first, b->n_rows - day_first, sizeof(tx), cmp_tx_time);
        }
        /* Customer windows over exact times: [t - w days, t], the current one included. */
        size_t m = b->n_rows - first;
        if (m == 0)
            continue;
        tx *v = b->rows + first;
        for (int w = 0; w < 3; w++) {
            size_t lo = 0;
            double sum = 0;
            for (size_t i = 0; i < m; i++) {
                long long now = (long long)v[i].day * 86400 + v[i].secs;
                sum += v[i].amount;
                while ((long long)v[lo].day * 86400 + v[lo].secs <
                       now - (long long)win[w] * 86400) {
                    sum -= v[lo].amount;
                    lo++;
                }
                size_t cnt = i - lo + 1;
                v[i].c_nb[w] = (float)cnt;
                v[i].c_avg[w] = (float)(sum / (double)cnt);
            }
        }
    }
    /* Terminal counts per day, as prefix sums for the delayed windows. */
    size_t stride = d + 1;
    b->t_cnt = calloc((size_t)b->n_term * stride, 4);
    b->t_fraud = calloc((size_t)b->n_term * stride, 4);
    if (!b->t_cnt || !b->t_fraud)
        return -1;
    for (size_t i = 0; i < b->n_rows; i++) {
        size_t at = (size_t)b->rows[i].term * stride + (size_t)b->rows[i].day + 1;
        b->t_cnt[at]++;
        b->t_fraud[at] += b->rows[i].fraud;
    }
    for (int t = 0; t < b->n_term; t++) {
        uint32_t *c = b->t_cnt + (size_t)t * stride, *f = b->t_fraud + (size_t)t * stride;
        for (size_t x = 1; x < stride; x++) {
            c[x] += c[x - 1];
            f[x] += f[x - 1];
        }
    }
    if (b->n_rows > 1)
        qsort(b->rows, b->n_rows, sizeof(tx), cmp_tx_time);
    return 0;
}

/* Rows, frauds and frauds per scenario (index 0 unused) of a file or a period. */
typedef struct tally {
    uint64_t rows, frauds, scen[4];
} tally;

static void tally_add(tally *n, const tx *t) {
    n->rows++;
    n->frauds += t->fraud;
    n->scen[t->scen]++;
}

typedef struct out {
    FILE *f;
    char path[4200], tmp[4300];
    char *buf;
    size_t len, cap;
    int bad;
    tally n;
} out;

static int out_open(out *o, const char *dir, const char *name) {
    memset(o, 0, sizeof *o);
    snprintf(o->path, sizeof o->path, "%s/%s", dir, name);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path);
    o->f = fopen(o->tmp, "wb");
    o->cap = 1 << 20;
    o->buf = malloc(o->cap);
    if (!o->f || !o->buf) {
        cli_error(CMD, "cannot write %s: %s", o->tmp, strerror(errno));
        if (o->f)
            fclose(o->f);
        o->f = NULL;
        free(o->buf);
        o->buf = NULL;
        return -1;
    }
    return 0;
}

/* Drops a file that was opened and not closed (after an error): its temporary goes. */
static void out_abandon(out *o) {
    if (o->f) {
        fclose(o->f);
        unlink(o->tmp);
    }
    free(o->buf);
    o->f = NULL;
    o->buf = NULL;
}

static void flush_buf(out *o) {
    if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len)
        o->bad = 1;
    o->len = 0;
}

static void put_str(out *o, const char *s) {
    size_t n = strlen(s);
    if (o->len + n > o->cap)
        flush_buf(o);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* v >= 0 with `dec` decimals, rounded half up; fast and locale-free. */
static void put_fixed(out *o, double v, int dec) {
    char tmp[48];
    int n = 0;
    static const double p10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    unsigned long long scaled = (unsigned long long)(v * p10[dec] + 0.5);
    unsigned long long ip = scaled / (unsigned long long)p10[dec];
    unsigned long long fp = scaled % (unsigned long long)p10[dec];
    char rev[24];
    int k = 0;
    do {
        rev[k++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (k)
        tmp[n++] = rev[--k];
    if (dec) {
        tmp[n++] = '.';
        for (int i = dec - 1; i >= 0; i--) {
            tmp[n + i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        n += dec;
    }
    tmp[n] = 0;
    put_str(o, tmp);
}

static const char *HEADER =
    "CUSTOMER_ID,TX_TIME_DAYS,TX_AMOUNT,TX_DURING_WEEKEND,TX_DURING_NIGHT,"
    "CUSTOMER_ID_NB_TX_1DAY_WINDOW,CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW,"
    "CUSTOMER_ID_NB_TX_7DAY_WINDOW,CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW,"
    "CUSTOMER_ID_NB_TX_30DAY_WINDOW,CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW,"
    "TERMINAL_ID_NB_TX_1DAY_WINDOW,TERMINAL_ID_RISK_1DAY_WINDOW,"
    "TERMINAL_ID_NB_TX_7DAY_WINDOW,TERMINAL_ID_RISK_7DAY_WINDOW,"
    "TERMINAL_ID_NB_TX_30DAY_WINDOW,TERMINAL_ID_RISK_30DAY_WINDOW,TX_FRAUD\n";

static void put_row(out *o, const bank *b, const tx *t) {
    static const int win[3] = {1, 7, 30};
    size_t stride = (size_t)b->days + 1;
    /* Day 0 is a Sunday (the handbook starts on 2018-04-01). */
    int dow = t->day % 7, weekend = dow == 0 || dow == 6, night = t->secs / 3600 <= 6;
    put_fixed(o, (double)b->idx * (double)b->n_cust + t->cust, 0);
    put_str(o, ",");
    put_fixed(o, t->day, 0);
    put_str(o, ",");
    put_fixed(o, t->amount, 2);
    put_str(o, weekend ? ",1" : ",0");
    put_str(o, night ? ",1" : ",0");
    for (int w = 0; w < 3; w++) {
        put_str(o, ",");
        put_fixed(o, t->c_nb[w], 0);
        put_str(o, ",");
        put_fixed(o, t->c_avg[w], 4);
    }
    const uint32_t *c = b->t_cnt + (size_t)t->term * stride;
    const uint32_t *f = b->t_fraud + (size_t)t->term * stride;
    for (int w = 0; w < 3; w++) {
        /* Days [day - DELAY - w, day - DELAY): prefix index x holds days < x. */
        int hi = t->day - DELAY, lo = hi - win[w];
        hi = hi < 0 ? 0 : hi;
        lo = lo < 0 ? 0 : lo;
        uint32_t n = c[hi] - c[lo], fr = f[hi] - f[lo];
        put_str(o, ",");
        put_fixed(o, n, 0);
        put_str(o, ",");
        put_fixed(o, n ? (double)fr / n : 0.0, 6);
    }
    put_str(o, t->fraud ? ",1\n" : ",0\n");
    tally_add(&o->n, t);
}

/* Raw output (--raw). */
#define RAW_START_EPOCH 1522540800LL /* 2018-04-01 00:00:00 UTC, the handbook's start, a Sunday */
#define RAW_START_TEXT "2018-04-01 00:00:00"

static const char *RAW_HEADER =
    "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n";
static const char *TRUTH_HEADER = "TRANSACTION_ID,FILE,TX_FRAUD_SCENARIO\n";

/* "YYYY-MM-DD" of `day` days after the start into s. */
static void day_date(char s[16], int day) {
    time_t t = (time_t)(RAW_START_EPOCH + (long long)day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    /* days <= 3650: years 2018..2028, the fields fit */
    snprintf(s, 16, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100);
}

/* One raw row: id, "date HH:MM:SS", the bank's customer and terminal as ids unique across banks,
 * the amount and the label. */
static void put_raw(out *o, uint64_t id, const char *date, const bank *b, const tx *t) {
    char hms[16];
    int s = t->secs;
    hms[0] = ' ';
    hms[1] = (char)('0' + s / 36000);
    hms[2] = (char)('0' + s / 3600 % 10);
    hms[3] = ':';
    hms[4] = (char)('0' + s / 600 % 6);
    hms[5] = (char)('0' + s / 60 % 10);
    hms[6] = ':';
    hms[7] = (char)('0' + s % 60 / 10);
    hms[8] = (char)('0' + s % 10);
    hms[9] = ',';
    hms[10] = 0;
    put_fixed(o, (double)id, 0);
    put_str(o, ",");
    put_str(o, date);
    put_str(o, hms);
    put_fixed(o, (double)b->idx * (double)b->n_cust + t->cust, 0);
    put_str(o, ",");
    put_fixed(o, (double)b->idx * (double)b->n_term + t->term, 0);
    put_str(o, ",");
    put_fixed(o, t->amount, 2);
    put_str(o, t->fraud ? ",1\n" : ",0\n");
    tally_add(&o->n, t);
}

/* Bank b's file over all its days, and a truth row per fraud; ids go on from *next_id. The
 * rows from day `split` on are tallied into *test as well. */
static void write_raw_bank(out *o, out *truth, tally *test, uint64_t *next_id, const bank *b,
                           const char *name, int split) {
    char date[16] = "";
    int date_day = -1;
    char line[96];
    put_str(o, RAW_HEADER);
    for (size_t i = 0; i < b->n_rows; i++) {
        const tx *t = &b->rows[i];
        if (t->day != date_day) {
            day_date(date, t->day);
            date_day = t->day;
        }
        uint64_t id = (*next_id)++;
        put_raw(o, id, date, b, t);
        if (t->fraud) {
            snprintf(line, sizeof line, "%llu,%s,%d\n", (unsigned long long)id, name, t->scen);
            put_str(truth, line);
            tally_add(&truth->n, t);
        }
        if (t->day >= split)
            tally_add(test, t);
    }
}

/* fsync + rename: a reader never sees a half-written file. */
static int out_close(out *o) {
    flush_buf(o);
    int bad = o->bad || fflush(o->f) != 0 || fsync(fileno(o->f)) != 0;
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    free(o->buf);
    o->buf = NULL;
    if (bad || rename(o->tmp, o->path) != 0) {
        cli_error(CMD, "cannot write %s: %s", o->path, strerror(errno));
        unlink(o->tmp);
        return -1;
    }
    return 0;
}

static void json_tally(FILE *f, const tally *n) {
    fprintf(f,
            "\"rows\": %llu, \"frauds\": %llu, \"fraud_rate\": %.6f, \"scenario_1\": %llu, "
            "\"scenario_2\": %llu, \"scenario_3\": %llu",
            (unsigned long long)n->rows, (unsigned long long)n->frauds,
            n->rows ? (double)n->frauds / (double)n->rows : 0.0, (unsigned long long)n->scen[1],
            (unsigned long long)n->scen[2], (unsigned long long)n->scen[3]);
}

/* One entry of synth.json's files; a bank's (mix 0..2) names its scenario mix, test.csv's not. */
static void json_file(FILE *f, const char *name, const tally *n, int mix, int first) {
    static const char *const mixes[3] = {"[1, 2]", "[1, 3]", "[1]"};
    fprintf(f, "%s    {\"file\": \"%s\", ", first ? "" : ",\n", name);
    json_tally(f, n);
    if (mix >= 0)
        fprintf(f, ", \"scenario_mix\": %s", mixes[mix]);
    fputc('}', f);
}

static void print_tally(const char *name, const tally *n, const char *tail) {
    printf("%-11s %9llu rows  %7llu frauds (%.3f%%)  scenarios 1/2/3: %llu/%llu/%llu%s\n", name,
           (unsigned long long)n->rows, (unsigned long long)n->frauds,
           n->rows ? 100.0 * (double)n->frauds / (double)n->rows : 0.0,
           (unsigned long long)n->scen[1], (unsigned long long)n->scen[2],
           (unsigned long long)n->scen[3], tail);
}

int cmd_synth(int argc, char **argv) {
    /* the option table's ranges of --banks and --days (core/prog/options.h) */
    _Static_assert(MAX_BANKS == 26 && 2 * DELAY + 2 == 16,
                   "update --banks' and --days' ranges in core/prog/options.h");
    fedc_opts op;
    int prc = fedc_opts_parse(&op, FEDC_PROG_SYNTH, argc, argv, &g_help);
    if (prc >= 0)
        return prc;
#define HAS(id) fedc_opt_has(&op, FEDC_O_##id)
    if (!HAS(BANKS) || !HAS(CUSTOMERS) || !HAS(DAYS) || !HAS(SEED) || !HAS(OUT)) {
        cli_error(CMD, "%s is required (see fedc synth --help)",
                  !HAS(BANKS)       ? "--banks"
                  : !HAS(CUSTOMERS) ? "--customers"
                  : !HAS(DAYS)      ? "--days"
                  : !HAS(SEED)      ? "--seed"
                                    : "--out");
        return FEDC_EXIT_USAGE;
    }
    int banks = (int)op.v[FEDC_O_BANKS].i, customers = (int)op.v[FEDC_O_CUSTOMERS].i;
    int days = (int)op.v[FEDC_O_DAYS].i, raw = (int)op.v[FEDC_O_RAW].i;
    int terminals = HAS(TERMINALS) ? (int)op.v[FEDC_O_TERMINALS].i : 0;
    int test_days = HAS(TEST_DAYS) ? (int)op.v[FEDC_O_TEST_DAYS].i : -1;
    unsigned long long seed = op.v[FEDC_O_SEED].u;
    const char *dir = op.v[FEDC_O_OUT].text;
#undef HAS
    if (test_days < 0)
        test_days = days / 5 > 7 ? days / 5 : 7;
    if (test_days > days - DELAY - 1) {
        cli_error(CMD, "--test-days %d leaves fewer than %d training days of %d", test_days,
                  DELAY + 1, days);
        return FEDC_EXIT_USAGE;
    }
    if (!terminals)
        terminals = 2 * customers;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        cli_error(CMD, "--out: cannot create %s: %s", dir, strerror(errno));
        return FEDC_EXIT_USAGE;
    }
    int split = days - test_days, code = 1;
    char test_from[32], bank_file[MAX_BANKS][16];
    day_date(test_from, split);
    strcat(test_from, " 00:00:00");
    out test, truth;
    memset(&test, 0, sizeof test);
    memset(&truth, 0, sizeof truth);
    tally test_period;
    memset(&test_period, 0, sizeof test_period);
    uint64_t next_id = 0;
    char *json = NULL;
    size_t json_len = 0;
    if (raw ? out_open(&truth, dir, "truth.csv") : out_open(&test, dir, "test.csv"))
        return 1;
    put_str(raw ? &truth : &test, raw ? TRUTH_HEADER : HEADER);
    bank *bk = calloc((size_t)banks, sizeof *bk);
    out *files = calloc((size_t)banks, sizeof *files);
    size_t *test_pos = calloc((size_t)banks, sizeof *test_pos);
    if (!bk || !files || !test_pos) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    for (int k = 0; k < banks; k++) {
        bank *b = &bk[k];
        b->idx = k;
        b->n_cust = customers;
        b->n_term = terminals;
        b->days = days;
        /* The handbook's rates (2 of 10,000 terminals and 3 of 5,000 customers a day), scaled
         * to the bank, and the bank's scenario mix. */
        int mix = k % 3; /* 0: terminals, 1: cards, 2: neither */
        b->s2_per_day = mix == 0 ? 2.0 * terminals / 10000.0 : 0.0;
        b->s3_per_day = mix == 1 ? 3.0 * customers / 5000.0 : 0.0;
        if (make_profiles(b, seed) || make_compromises(b, seed) || make_transactions(b, seed)) {
            cli_error(CMD, "out of memory generating bank %c", 'a' + k);
            goto done;
        }
        char *name = bank_file[k];
        snprintf(name, sizeof bank_file[k], "bank-%c.csv", 'a' + k);
        if (out_open(&files[k], dir, name))
            goto done;
        if (raw) {
            write_raw_bank(&files[k], &truth, &test_period, &next_id, b, name, split);
        } else {
            put_str(&files[k], HEADER);
            size_t i = 0;
            for (; i < b->n_rows && b->rows[i].day < split; i++)
                put_row(&files[k], b, &b->rows[i]);
            test_pos[k] = i;
        }
        if (out_close(&files[k]))
            goto done;
        if (raw) { /* nothing of the bank is needed any more */
            bank_free(b);
            memset(b, 0, sizeof *b);
            continue;
        }
        /* Profiles are no longer needed; the rows of the test period stay for the merge. */
        free(b->comp_t);
        free(b->comp_c);
        b->comp_t = b->comp_c = NULL;
    }
    /* test.csv: the held-out days of all banks, merged in time order. */
    for (; !raw;) {
        int best = -1;
        for (int k = 0; k < banks; k++) {
            if (test_pos[k] >= bk[k].n_rows)
                continue;
            if (best < 0 ||
                cmp_tx_time(&bk[k].rows[test_pos[k]], &bk[best].rows[test_pos[best]]) < 0)
                best = k;
        }
        if (best < 0)
            break;
        put_row(&test, &bk[best], &bk[best].rows[test_pos[best]++]);
    }
    if (out_close(raw ? &truth : &test))
        goto done;
    /* synth.json last: its presence says that every file above is complete (fedc demo). */
    FILE *j = open_memstream(&json, &json_len);
    if (!j) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    fprintf(j,
            "{\"generator\": \"fedc synth (Le Borgne et al. 2022 handbook simulator)\", "
            "\"raw\": %s, \"banks\": %d, \"customers_per_bank\": %d, \"terminals_per_bank\": %d, "
            "\"days\": %d, \"train_days\": %d, \"test_days\": %d, \"seed\": %llu,\n",
            raw ? "true" : "false", banks, customers, terminals, days, split, test_days, seed);
    if (raw)
        fprintf(j,
                "  \"start\": \"" RAW_START_TEXT "\", \"test_from\": \"%s\", "
                "\"truth\": \"truth.csv\", \"truth_rows\": %llu,\n",
                test_from, (unsigned long long)truth.n.rows);
    fprintf(j, "  \"files\": [\n");
    for (int k = 0; k < banks; k++)
        json_file(j, bank_file[k], &files[k].n, k % 3, k == 0);
    if (!raw)
        json_file(j, "test.csv", &test.n, -1, 0);
    fprintf(j, "\n  ]");
    if (raw) {
        fprintf(j, ",\n  \"test_period\": {\"from\": \"%s\", ", test_from);
        json_tally(j, &test_period);
        fputc('}', j);
    }
    fprintf(j, "\n}\n");
    if (fclose(j) != 0) {
        cli_error(CMD, "out of memory");
        goto done;
    }
    char jpath[4200];
    snprintf(jpath, sizeof jpath, "%s/synth.json", dir);
    fedc_diag d = {{0}};
    if (fedc_write_atomic(jpath, json, json_len, &d) != FEDC_OK) {
        cli_error(CMD, "%s", d.msg);
        goto done;
    }
    for (int k = 0; k < banks; k++)
        print_tally(bank_file[k], &files[k].n, "");
    if (raw) {
        char tail[96];
        snprintf(tail, sizeof tail, "  (days %d..%d of %d, all banks)", split, days - 1, days);
        print_tally("test period", &test_period, tail);
        printf("truth.csv   %9llu frauds with their scenario; the test period starts %s\n",
               (unsigned long long)truth.n.rows, test_from);
    } else {
        char tail[64];
        snprintf(tail, sizeof tail, "  days %d..%d of %d", split, days - 1, days);
        print_tally("test.csv", &test.n, tail);
    }
    code = 0;
done:
    out_abandon(&test);
    out_abandon(&truth);
    for (int k = 0; files && k < banks; k++)
        out_abandon(&files[k]);
    for (int k = 0; bk && k < banks; k++)
        bank_free(&bk[k]);
    free(bk);
    free(files);
    free(test_pos);
    free(json);
    return code;
}
