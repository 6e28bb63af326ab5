/* sched_gittins.c — the Gittins index of a request whose output length is known only as a
 * distribution (rtlm's `--rtlm-rank gittins`, docs/scheduling.md "The Gittins rank"). For mean
 * response time with preemption in the M/G/1 queue the policy that serves the job of highest
 * Gittins index is optimal; with exact sizes it is SRPT, and with a length distribution whose
 * hazard falls (heavy tails) a request that has already run long is ranked lower — rtlm's
 * "demotion past p90" derived instead of hand-set.
 *
 * Model: the output length is S = ceil(X), X lognormal with median p50 and shape sigma (from the
 * prediction's p50 and p90), and S is truncated at the request's cap M (all of X's mass past M
 * sits at M). After a tokens, the index per token is
 *     G(a) = max over D >= 1 of P(S <= a + D | S > a) / E[min(S - a, D) | S > a].
 * Computed as: the continuous ratio with X in units of p50 (scale-invariant: it depends on sigma
 * and alpha = a / p50 only) is maximised once per (sigma, alpha) grid point when the object is
 * made (the table below); the token discreteness enters through the first Euler–Maclaurin term
 * (a sum over tokens is the integral plus half the end terms), which turns the continuous ratio
 * g (per unit of p50) into 1 / (p50 / g + 1/2) per token without moving its maximiser; the cap is
 * exact per call (closed form of the lognormal's partial expectation). The table is immutable
 * once made and owned by the caller (the rtlm policy). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "weft/sched.h"

#define N_SIG 40
#define SIG_LO 0.05
#define SIG_HI 4.0
#define N_U 400
#define U_LO (-6.907755278982137) /* ln 1e-3 */
#define U_HI 8.317766166719343    /* ln 4096 */
#define T_INF 1e3                 /* "maximiser at infinity" (D = all of the remaining length) */
#define Z90 1.2815515655446004    /* the standard normal's 0.9 quantile */

struct sched_gittins {
    double lng[N_SIG][N_U]; /* ln of the uncapped continuous index, per unit of p50 */
    double tst[N_SIG][N_U]; /* ln of its maximiser t* (in units of p50; T_INF: at infinity) */
};

/* ln P(Z > z) for the standard normal, without underflow in the far tail. */
static double ln_q(double z) {
    if (z < 30) return log(0.5 * erfc(z / M_SQRT2));
    double z2 = z * z;
    return -0.5 * z2 - log(z) - 0.5 * log(2 * M_PI) +
           log1p(-1 / z2 + 3 / (z2 * z2) - 15 / (z2 * z2 * z2));
}

/* Mean residual life E[X - x | X > x] of X = exp(sigma Z) (median 1) at x > 0. */
static double mean_residual(double sigma, double x) {
    double z = log(x) / sigma;
    double r = exp(0.5 * sigma * sigma + ln_q(z - sigma) - ln_q(z)) - x;
    return r > 0 ? r : 0;
}

static void build_row(sched_gittins *g, int k, double sigma) {
    double lnq[N_U], m[N_U];
    const double du = (U_HI - U_LO) / (N_U - 1);
    for (int i = 0; i < N_U; i++) {
        double u = U_LO + i * du, x = exp(u), z = u / sigma;
        lnq[i] = ln_q(z);
        m[i] = mean_residual(sigma, x);
    }
    for (int i = 0; i < N_U; i++) {
        double u = U_LO + i * du, z = u / sigma;
        /* D -> 0: the hazard rate; D -> infinity: 1 / mean residual life */
        double best = exp(-0.5 * z * z - 0.5 * log(2 * M_PI) - log(sigma) - u - lnq[i]);
        double arg = u;
        if (m[i] > 0 && 1 / m[i] > best) {
            best = 1 / m[i];
            arg = T_INF;
        }
        for (int j = i + 1; j < N_U; j++) {
            double d = lnq[j] - lnq[i];
            if (d < -40) break; /* the rest is the D -> infinity candidate */
            double rho = exp(d), den = m[i] - rho * m[j];
            if (!(den > 0)) continue;
            double v = (1 - rho) / den;
            if (v > best) {
                best = v;
                arg = U_LO + j * du;
            }
        }
        g->lng[k][i] = log(best > DBL_MIN ? best : DBL_MIN);
        g->tst[k][i] = arg;
    }
}

sched_gittins *sched_gittins_new(void) {
    sched_gittins *g = malloc(sizeof *g);
    if (!g) return NULL;
    for (int k = 0; k < N_SIG; k++)
        build_row(g, k, exp(log(SIG_LO) + k * (log(SIG_HI) - log(SIG_LO)) / (N_SIG - 1)));
    return g;
}

void sched_gittins_free(sched_gittins *g) {
    free(g);
}

double sched_gittins_sigma(double p50, double p90, double scale) {
    double s = p50 > 0 && p90 > p50 ? log(p90 / p50) / Z90 : 0;
    if (s < SCHED_GITTINS_SIGMA_FLOOR) s = SCHED_GITTINS_SIGMA_FLOOR;
    s *= scale > 0 ? scale : 1;
    return s < SIG_LO ? SIG_LO : s > SIG_HI ? SIG_HI : s;
}

/* Position of v on a uniform grid of n points over [lo, hi]: cell index and weight. */
static int cell(double v, double lo, double hi, int n, double *w) {
    double f = (v - lo) / (hi - lo) * (n - 1);
    if (!(f > 0)) f = 0;
    if (f > n - 1) f = n - 1;
    int i = (int)f;
    if (i >= n - 1) i = n - 2;
    *w = f - i;
    return i;
}

static double lerp2(const double t[N_SIG][N_U], int k, double wk, int i, double wi) {
    double a = t[k][i] + wi * (t[k][i + 1] - t[k][i]);
    double b = t[k + 1][i] + wi * (t[k + 1][i + 1] - t[k + 1][i]);
    return a + wk * (b - a);
}

double sched_gittins_index(const sched_gittins *g, double p50, double sigma, int cap,
                           int attained) {
    if (!g) return 0;
    if (p50 < 1) p50 = 1;
    if (!(sigma >= SIG_LO)) sigma = SIG_LO;
    if (sigma > SIG_HI) sigma = SIG_HI;
    if (attained < 0) attained = 0;
    if (cap > 0 && attained >= cap - 1) return 1; /* certain to end with the next token */
    double alpha = attained / p50;
    double u = alpha > 0 ? log(alpha) : U_LO;
    double wk, wi;
    int k = cell(log(sigma), log(SIG_LO), log(SIG_HI), N_SIG, &wk);
    int i = cell(u, U_LO, U_HI, N_U, &wi);
    double best = 0;
    double ucap = cap > 0 ? log(cap / p50) : HUGE_VAL;
    double ts = lerp2(g->tst, k, wk, i, wi);
    if (ts < ucap) {
        if (ts > log(alpha + 1 / p50)) {
            double gc = exp(lerp2(g->lng, k, wk, i, wi)); /* per unit of p50 */
            best = 1 / (p50 / gc + 0.5);
        } else {
            /* the continuous maximiser lies within the next token (a falling hazard, or mass
             * below one token): the ratio falls beyond it, so over D >= 1 the maximum is at
             * D = 1, exactly P(S = a + 1 | S > a) */
            double z0 = attained > 0 ? log(attained / p50) / sigma : -HUGE_VAL;
            double lq0 = attained > 0 ? ln_q(z0) : 0;
            best = -expm1(ln_q(log((attained + 1) / p50) / sigma) - lq0);
        }
    }
    if (cap > 0) {
        /* D = M - a: everything has ended by the cap. Sum over the remaining tokens of
         * P(S > a + j) / P(S > a) = p50 (m(a) - rho m(M)) + (1 - rho) / 2 (Euler–Maclaurin),
         * rho = P(X > M) / P(X > a), m the mean residual life in units of p50 */
        double xa = alpha > exp(U_LO) ? alpha : exp(U_LO), xm = cap / p50;
        double rho = exp(ln_q(log(xm) / sigma) - ln_q(log(xa) / sigma));
        if (rho > 1) rho = 1;
        double sum = p50 * (mean_residual(sigma, xa) - rho * mean_residual(sigma, xm)) +
                     0.5 * (1 - rho);
        if (sum > 0 && 1 / sum > best) best = 1 / sum;
    }
    if (!(best > 0)) best = DBL_MIN;
    return best < 1 ? best : 1;
}
