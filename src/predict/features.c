/* features.c — a prompt's uncertainty features for the length predictor (after RT-LM): one pass
 * over the bytes splits words, sentences and lines and counts structure (questions, enumerations,
 * clauses, code and maths symbols); a second pass matches the cue lexicon (cues.c) on the words
 * and reads explicit length requests ("in 3 sentences", "list 5 tips"). No allocation: word spans
 * live in a fixed array on the stack, so the cost is a few microseconds for an ordinary prompt.
 * docs/predict.md documents each feature and why it should predict answer length. */
#include "predict/pred_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const feature_names[PF_COUNT] = {
    [PF_LOG_PROMPT_TOKENS] = "log_prompt_tokens",
    [PF_LOG_LINES] = "log_lines",
    [PF_QUESTIONS] = "questions",
    [PF_SENTENCES] = "sentences",
    [PF_ENUM_ITEMS] = "enum_items",
    [PF_CLAUSES] = "clauses",
    [PF_FACTOID_WH] = "factoid_wh",
    [PF_WHY_HOW] = "why_how",
    [PF_YES_NO] = "yes_no",
    [PF_OPEN_EXPLAIN] = "open_explain",
    [PF_CREATIVE] = "creative",
    [PF_COMPARE] = "compare",
    [PF_LIST_REQUEST] = "list_request",
    [PF_LIST_N] = "list_n",
    [PF_BREVITY] = "brevity",
    [PF_DETAIL] = "detail",
    [PF_STEP_BY_STEP] = "step_by_step",
    [PF_TARGET_WORDS] = "target_words",
    [PF_TARGET_PRESENT] = "target_present",
    [PF_SHORT_ANSWER_TASK] = "short_answer_task",
    [PF_TRANSFORM_TASK] = "transform_task",
    [PF_TRANSFORM_X_LEN] = "transform_x_len",
    [PF_CODE_REQUEST] = "code_request",
    [PF_CODE_PRESENT] = "code_present",
    [PF_LANG_MENTION] = "lang_mention",
    [PF_NUMBERS] = "numbers",
    [PF_MATHS] = "maths",
    [PF_VAGUE] = "vague",
    [PF_PRONOUN_AMBIG] = "pronoun_ambiguity",
    [PF_PP_ATTACH] = "pp_attachment",
    [PF_COORD_AMBIG] = "coordination",
    [PF_POLYSEMY] = "polysemy",
    [PF_ROLEPLAY] = "roleplay",
    [PF_ADVICE] = "advice",
    [PF_DEFINITION] = "definition",
    [PF_OPINION] = "opinion",
    [PF_CHIT_CHAT] = "chit_chat",
    [PF_HARMFUL] = "harmful",
    [PF_CONTEXT_BLOCK] = "context_block",
    [PF_TOOL_CALL] = "tool_call",
    [PF_FIRST_PERSON] = "first_person",
    [PF_IMPERATIVE] = "imperative",
    [PF_LIMIT_CUE] = "limit_cue",
    [PF_MULTI_PART] = "multi_part",
    [PF_CODE_X_LEN] = "code_x_len",
    [PF_MATHS_X_LEN] = "maths_x_len",
    [PF_ENDS_OPEN] = "ends_open",
    [PF_CODE_COMPLETION] = "code_completion",
    [PF_DOC_WORDS] = "doc_words",
    [PF_DOCTESTS] = "doctests",
    [PF_COMPLETION_X_DOC] = "completion_x_doc",
    [PF_FERMI] = "fermi",
    [PF_COUNTERFACTUAL] = "counterfactual",
    [PF_COMPLETION_X_LEN] = "completion_x_len",
    [PF_MEAN_WORD_LEN] = "mean_word_len",
    [PF_INFORMAL] = "informal",
    [PF_COMPLETION_CASES] = "completion_cases",
    [PF_GIVEN_CODE] = "given_code",
    [PF_N_PARAMS] = "n_params",
    [PF_ENTROPY] = "entropy",
};

int pred_feature_count(void) {
    return PF_COUNT;
}

const char *pred_feature_name(int i) {
    return i >= 0 && i < PF_COUNT ? feature_names[i] : NULL;
}

/* ---- words ---- */

typedef struct word {
    uint32_t off;
    uint16_t len;
    uint8_t sent_start; /* first word of a sentence or line */
    uint8_t has_digit;
} word;

#define CUE_WORDS (PRED_CUE_HEAD_WORDS + PRED_CUE_TAIL_WORDS)
#define MAX_WORD_LEN 64 /* longer runs (URLs, base64) are counted but never match a cue */

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static unsigned char lower(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* word equals the lower-case ASCII string s */
static int word_is(const char *text, const word *w, const char *s) {
    size_t n = strlen(s);
    if (w->len != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)text[w->off + i]) != (unsigned char)s[i]) return 0;
    return 1;
}

static int word_in(const char *text, const word *w, const char *const *set) {
    for (; *set; set++)
        if (word_is(text, w, *set)) return 1;
    return 0;
}

/* Value of a number written in digits ("12", "1,000", "2.5") or as a small number word; -1 if
 * the word is not a number. "a"/"an" count as 1 only where allow_article is set. */
static double number_value(const char *text, const word *w, int allow_article) {
    static const char *const words[] = {"one",    "two",    "three",    "four",     "five",
                                        "six",    "seven",  "eight",    "nine",     "ten",
                                        "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                        "twenty", "thirty", "forty",    "fifty",    "hundred"};
    static const double vals[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                  11, 12, 13, 14, 15, 20, 30, 40, 50, 100};
    if (w->has_digit) {
        char buf[32];
        size_t k = 0;
        for (size_t i = 0; i < w->len && k + 1 < sizeof buf; i++) {
            char c = text[w->off + i];
            if (c == ',') continue;
            if (!((c >= '0' && c <= '9') || c == '.')) return -1;
            buf[k++] = c;
        }
        buf[k] = 0;
        if (!k) return -1;
        return strtod(buf, NULL);
    }
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        if (word_is(text, w, words[i])) return vals[i];
    if (word_is(text, w, "few")) return 3;
    if (word_is(text, w, "couple")) return 2;
    if (allow_article &&
        (word_is(text, w, "a") || word_is(text, w, "an") || word_is(text, w, "single")))
        return 1;
    return -1;
}

/* Words per unit of an explicit length request ("3 paragraphs"), or 0. */
static double unit_words(const char *text, const word *w) {
    static const struct {
        const char *unit;
        double words;
    } units[] = {{"word", 1},       {"words", 1},       {"sentence", 15},   {"sentences", 15},
                 {"paragraph", 80}, {"paragraphs", 80}, {"line", 10},       {"lines", 10},
                 {"page", 400},     {"pages", 400},     {"stanza", 30},     {"stanzas", 30},
                 {"verse", 30},     {"verses", 30},     {"character", 0.2}, {"characters", 0.2},
                 {"bullet", 12},    {"bullets", 12},    {"tweet", 30},      {"tweets", 30}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (word_is(text, w, units[i].unit)) return units[i].words;
    return 0;
}

static const char *const list_nouns[] = {
    "tips",        "ways",      "examples",   "ideas",         "reasons",  "things",
    "steps",       "items",     "questions",  "facts",         "names",    "suggestions",
    "strategies",  "benefits",  "books",      "movies",        "places",   "types",
    "methods",     "options",   "activities", "songs",         "games",    "foods",
    "countries",   "features",  "advantages", "disadvantages", "synonyms", "alternatives",
    "recipes",     "exercises", "habits",     "rules",         "products", "companies",
    "cities",      "animals",   "points",     "key",           "main",     "best",
    "different",   "common",    "important",  "famous",        "popular",  "good",
    "interesting", "creative",  "tools",      "resources",     "words",    "sentences",
    "titles",      "slogans",   "jokes",      "characters",    "quotes",   "terms",
    NULL};
static const char *const list_verbs[] = {
    "list",  "top",       "name",   "give",       "provide", "suggest", "generate", "share",
    "offer", "recommend", "create", "brainstorm", "come",    "write",   "me",       NULL};
static const char *const aux_verbs[] = {
    "is",    "are",   "was",      "were",     "can",       "could", "do",      "does",
    "did",   "will",  "would",    "should",   "shall",     "may",   "might",   "have",
    "has",   "had",   "am",       "isn't",    "aren't",    "don't", "doesn't", "didn't",
    "can't", "won't", "wouldn't", "couldn't", "shouldn't", NULL};
static const char *const imperatives[] = {
    "write",     "create",    "generate",  "give",       "make",      "provide", "design",
    "develop",   "plan",      "build",     "compose",    "draft",     "produce", "prepare",
    "construct", "come",      "tell",      "show",       "find",      "name",    "list",
    "explain",   "describe",  "summarize", "summarise",  "suggest",   "help",    "rewrite",
    "translate", "classify",  "identify",  "compare",    "calculate", "solve",   "imagine",
    "pretend",   "act",       "outline",   "brainstorm", "recommend", "propose", "devise",
    "craft",     "edit",      "convert",   "choose",     "select",    "analyze", "analyse",
    "evaluate",  "determine", "please",    "discuss",    "implement", "debug",   "fix",
    "add",       "remove",    "sort",      "count",      "use",       "extract", "detect",
    NULL};

/* ---- structure pass ---- */

typedef struct scan {
    word *w;      /* CUE_WORDS entries, on the caller's stack */
    int n_kept;   /* words stored in w (chronological after finish_words) */
    long n_words; /* all words */
    long lines, questions, sentences, enum_items, clause_marks, numbers, code_sym, maths_sym;
    size_t context_bytes;
} scan;

static void keep_word(scan *s, word w) {
    if (s->n_words < PRED_CUE_HEAD_WORDS) {
        s->w[s->n_words] = w;
        s->n_kept = (int)s->n_words + 1;
    } else {
        long t = (s->n_words - PRED_CUE_HEAD_WORDS) % PRED_CUE_TAIL_WORDS;
        s->w[PRED_CUE_HEAD_WORDS + t] = w;
        if (s->n_kept < CUE_WORDS) s->n_kept++;
    }
    s->n_words++;
}

/* Puts the tail ring in chronological order. */
static void finish_words(scan *s) {
    if (s->n_words <= CUE_WORDS) return;
    long start = (s->n_words - PRED_CUE_HEAD_WORDS) % PRED_CUE_TAIL_WORDS;
    word tmp[PRED_CUE_TAIL_WORDS];
    for (int i = 0; i < PRED_CUE_TAIL_WORDS; i++)
        tmp[i] = s->w[PRED_CUE_HEAD_WORDS + (start + i) % PRED_CUE_TAIL_WORDS];
    memcpy(s->w + PRED_CUE_HEAD_WORDS, tmp, sizeof tmp);
}

static int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* A line's start: "- item", "* item", "• item", "1. item", "2) item", "a) item". */
static int enum_marker_at(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i >= n) return 0;
    if ((p[i] == '-' || p[i] == '*' || p[i] == '+') && i + 1 < n && p[i + 1] == ' ') return 1;
    if (i + 2 < n && p[i] == 0xE2 && p[i + 1] == 0x80 && p[i + 2] == 0xA2) return 1; /* • */
    size_t d = i;
    while (d < n && is_digit(p[d]) && d - i < 3)
        d++;
    if (d > i && d < n && (p[d] == '.' || p[d] == ')') && d + 1 < n && p[d + 1] == ' ') return 1;
    if (i + 2 < n && ((p[i] >= 'a' && p[i] <= 'h') || (p[i] >= 'A' && p[i] <= 'H')) &&
        p[i + 1] == ')' && p[i + 2] == ' ')
        return 1;
    return 0;
}

static void scan_text(const char *text, size_t len, scan *s) {
    const unsigned char *p = (const unsigned char *)text;
    int sent_start = 1, line_has_content = 0, in_sentence = 0;
    size_t first_nl = (size_t)-1;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        if (is_word_byte(c)) {
            size_t st = i;
            int digit = 0;
            while (i < len) {
                unsigned char d = p[i];
                if (is_word_byte(d)) {
                    digit |= is_digit(d);
                    i++;
                } else if ((d == '\'' || ((d == '.' || d == ',') && digit)) && i + 1 < len &&
                           is_word_byte(p[i + 1]) && i > st) {
                    i++; /* don't, 2.5, 1,000 */
                } else {
                    break;
                }
            }
            /* c++, c#, f#: trailing + or # right after letters */
            while (i < len && (p[i] == '+' || p[i] == '#') && i - st <= 2)
                i++;
            size_t wl = i - st;
            if (digit) s->numbers++;
            word w = {(uint32_t)(st > UINT32_MAX ? UINT32_MAX : st),
                      (uint16_t)(wl > MAX_WORD_LEN ? MAX_WORD_LEN + 1 : wl), (uint8_t)sent_start,
                      (uint8_t)digit};
            if (st <= UINT32_MAX) keep_word(s, w);
            sent_start = 0;
            line_has_content = 1;
            in_sentence = 1;
            continue;
        }
        if (c == '\n') {
            s->lines++;
            if (first_nl == (size_t)-1 && line_has_content) first_nl = i;
            if (in_sentence) s->sentences++;
            in_sentence = 0;
            sent_start = 1;
            line_has_content = 0;
            if (enum_marker_at(p + i + 1, len - i - 1)) s->enum_items++;
            i++;
            continue;
        }
        if (c == '?' || c == '!' || (c == '.' && (i + 1 >= len || !is_digit(p[i + 1])))) {
            if (c == '?') s->questions++;
            if (in_sentence && (i + 1 >= len || p[i + 1] == ' ' || p[i + 1] == '\n' ||
                                p[i + 1] == '"' || p[i + 1] == ')')) {
                s->sentences++;
                in_sentence = 0;
                sent_start = 1;
            }
        }
        if (c == ',' || c == ';' || c == ':') s->clause_marks++;
        if (strchr("{}[]();=<>`_|\\", c)) s->code_sym++;
        if (strchr("+-*/^=%", c)) {
            /* an operator beside a digit, allowing one space: 3 + 4, 2*x, 15% */
            int near = (i > 0 && is_digit(p[i - 1])) ||
                       (i > 1 && p[i - 1] == ' ' && is_digit(p[i - 2])) ||
                       (i + 1 < len && is_digit(p[i + 1])) ||
                       (i + 2 < len && p[i + 1] == ' ' && is_digit(p[i + 2]));
            if (near) s->maths_sym++;
        }
        if (c == '$' || (c == 0xC2 && i + 1 < len && p[i + 1] == 0xA3) ||
            (c == 0xE2 && i + 2 < len && p[i + 1] == 0x82 && p[i + 2] == 0xAC))
            s->maths_sym++; /* $, £, € */
        if (c == '(' && i + 2 < len &&
            (is_digit(p[i + 1]) || (p[i + 1] >= 'a' && p[i + 1] <= 'h')) && p[i + 2] == ')')
            s->enum_items++; /* inline (1) (a) */
        if ((c == ' ' || c == '\t') && (i == 0 || p[i - 1] == '\n')) {
            size_t k = i;
            while (k < len && (p[k] == ' ' || p[k] == '\t') && k - i < 4)
                k++;
            if (k - i >= 4 || (k > i && p[i] == '\t')) s->code_sym += 2; /* indented line */
        }
        i++;
    }
    if (in_sentence) s->sentences++;
    if (len && p[0] && enum_marker_at(p, len)) s->enum_items++;
    if (first_nl != (size_t)-1) {
        size_t k = first_nl;
        while (k < len && (p[k] == '\n' || p[k] == ' ' || p[k] == '\r' || p[k] == '\t'))
            k++;
        s->context_bytes = len - k;
    }
    finish_words(s);
}

/* ---- cue pass ---- */

/* Does cue phrase match words w[i..)? Returns the number of words matched, 0 when a later word
 * differs, -1 when the first word already differs. */
static int phrase_matches(const char *text, const word *w, int n, int i, const char *phrase) {
    int k = i;
    const char *p = phrase;
    while (*p) {
        int miss = k == i ? -1 : 0;
        if (k >= n) return miss;
        const char *e = strchr(p, ' ');
        size_t pl = e ? (size_t)(e - p) : strlen(p);
        if (w[k].len != pl) return miss;
        for (size_t j = 0; j < pl; j++)
            if (lower((unsigned char)text[w[k].off + j]) != (unsigned char)p[j]) return miss;
        k++;
        p += pl;
        if (*p == ' ') p++;
    }
    return k - i;
}

static void match_cues(const char *text, const word *w, int n, long counts[PF_COUNT]) {
    int n_cues;
    const pred_cue *cues = pred_cues(&n_cues);
    for (int i = 0; i < n; i++) {
        if (w[i].len > MAX_WORD_LEN) continue;
        int c = pred_cue_first(text + w[i].off, w[i].len);
        if (c < 0) continue;
        /* phrases sharing this first word are contiguous from c on */
        for (; c < n_cues && phrase_matches(text, w, n, i, cues[c].phrase) >= 0; c++) {
            if (phrase_matches(text, w, n, i, cues[c].phrase) > 0) counts[cues[c].feature]++;
        }
    }
}

/* Explicit length requests and list sizes in words w[0..n). */
static void read_length_requests(const char *text, const word *w, int n, double *target_words,
                                 double *list_n) {
    for (int i = 0; i < n; i++) {
        double v = number_value(text, &w[i], 1);
        if (v <= 0 || v > 100000) continue;
        /* NUMBER [adjective] UNIT: "3 paragraphs", "a short paragraph", "100-word" */
        for (int j = i + 1; j <= i + 2 && j < n; j++) {
            double u = unit_words(text, &w[j]);
            if (u > 0) {
                double t = v * u;
                if (t > *target_words) *target_words = t;
                break;
            }
        }
        if (w[i].has_digit || number_value(text, &w[i], 0) > 0) {
            int listy = 0;
            for (int j = i + 1; j <= i + 2 && j < n && !listy; j++)
                listy = word_in(text, &w[j], list_nouns);
            for (int j = i - 1; j >= i - 2 && j >= 0 && !listy; j--)
                listy = word_in(text, &w[j], list_verbs);
            if (listy && v >= 2 && v <= 1000 && v > *list_n) *list_n = v;
        }
    }
}

/* The prompt stops where its answer must continue it: code opened and not closed (a trailing
 * ':', '{', '(', ',', an open docstring '"""') or a dangling indented line. */
static int ends_open(const char *text, size_t len) {
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
                   text[len - 1] == '\t'))
        len--;
    if (!len) return 0;
    char c = text[len - 1];
    if (c == ':' || c == '{' || c == '(' || c == ',' || c == '[' || c == '=') return 1;
    if (len >= 3 && !memcmp(text + len - 3, "\"\"\"", 3)) return 1;
    return 0;
}

/* ---- code to complete ---- */

typedef struct code_scan {
    int has_def;      /* a line opens a function/class definition */
    int ends_in_code; /* the prompt stops inside code: indented last line, open block or docstring */
    long doc_words;   /* words inside docstrings and comments */
    long doctests;    /* ">>>" examples and "Example" lines */
    long cases;       /* case words in docstrings/comments: if, otherwise, unless, each... */
    long given;       /* non-blank lines other than imports before the last definition */
    long params;      /* parameters of the last definition's signature (self/cls not counted) */
} code_scan;

/* Words of a specification that mark a case distinction or a per-item rule: each tends to become
 * a branch or a loop in the body. */
static const char *const case_words[] = {"if",     "otherwise", "else",  "unless", "when",
                                         "whenever", "except",  "only",  "each",   "every",
                                         "case",   "cases",     NULL};

static int is_case_word(const unsigned char *p, size_t n) {
    for (int k = 0; case_words[k]; k++) {
        size_t l = strlen(case_words[k]);
        if (l != n) continue;
        size_t i = 0;
        while (i < n && (p[i] | 0x20) == (unsigned char)case_words[k][i])
            i++;
        if (i == n) return 1;
    }
    return 0;
}

/* Parameters in the signature on line p[0..n): top-level commas between the first '(' and its
 * ')' (or the line's end), plus one when the list is not empty; a leading self/cls is not
 * counted. */
static long count_params(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n && p[i] != '(')
        i++;
    if (i == n) return 0;
    long count = 0;
    int depth = 0, any = 0;
    size_t first = ++i;
    for (; i < n; i++) {
        unsigned char c = p[i];
        if (c == '(' || c == '[' || c == '{') depth++;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) {
            depth--;
            continue;
        }
        if (c == ')' && depth == 0) break;
        if (c == ',' && depth == 0) count++;
        if (c != ' ' && c != '\t') any = 1;
    }
    if (!any) return 0;
    count++;
    while (first < n && p[first] == ' ')
        first++;
    if ((n - first >= 4 && !memcmp(p + first, "self", 4) &&
         (first + 4 == n || p[first + 4] == ',' || p[first + 4] == ')')) ||
        (n - first >= 3 && !memcmp(p + first, "cls", 3) &&
         (first + 3 == n || p[first + 3] == ',' || p[first + 3] == ')')))
        count--;
    return count;
}

/* Does line p[0..n) (leading blanks skipped) start a definition: "def f(", "class A",
 * "function f(", "func f(", "fn f(", "pub fn", or a C-like "TYPE name(..."? */
static int def_line(const unsigned char *p, size_t n) {
    static const char *const kw[] = {"def ",     "async def ", "class ",    "function ",
                                     "func ",    "fn ",        "pub fn ",   "public ",
                                     "private ", "static ",    "void ",     "int ",
                                     "bool ",    "char ",      "double ",   "float ",
                                     "long ",    "std::",      "template<", "template <",
                                     NULL};
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    for (int k = 0; kw[k]; k++) {
        size_t l = strlen(kw[k]);
        if (n - i < l || memcmp(p + i, kw[k], l)) continue;
        if (k == 2) return 1; /* class */
        for (size_t j = i + l; j < n; j++)
            if (p[j] == '(') return 1; /* a signature, not a declaration like "int x = 3;" */
        return 0;
    }
    return 0;
}

/* One pass over the lines: definitions, docstring/comment words, doctest examples, and whether
 * the prompt ends inside code. Docstrings are spans between triple quotes (double or single);
 * comments run from '#' (in a prompt with a definition) or "//" to the end of the line, or
 * between slash-star and star-slash. */
static void scan_code(const char *text, size_t len, code_scan *c) {
    const unsigned char *p = (const unsigned char *)text;
    int in_doc = 0, in_block = 0;
    size_t last_start = 0, last_end = 0; /* the last non-blank line */
    long code_lines = 0;                 /* non-blank, non-import lines so far */
    for (size_t ls = 0; ls < len;) {
        size_t le = ls;
        while (le < len && p[le] != '\n')
            le++;
        size_t i = ls;
        while (i < le && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
            i++;
        if (def_line(p + ls, le - ls)) {
            c->has_def = 1;
            c->given = code_lines;
            c->params = count_params(p + i, le - i);
        }
        if (i < le) {
            last_start = ls;
            last_end = le;
            if (!(le - i >= 7 && !memcmp(p + i, "import ", 7)) &&
                !(le - i >= 5 && !memcmp(p + i, "from ", 5)) &&
                !(le - i >= 8 && !memcmp(p + i, "#include", 8)))
                code_lines++;
        }
        if (le - i >= 3 && !memcmp(p + i, ">>>", 3)) c->doctests++;
        if (le - i >= 7 && (!memcmp(p + i, "Example", 7) || !memcmp(p + i, "example", 7)))
            c->doctests++;
        int in_comment = 0, word = 0;
        for (size_t k = ls; k < le; k++) {
            if (!in_comment && !in_block && k + 3 <= le &&
                (!memcmp(p + k, "\"\"\"", 3) || !memcmp(p + k, "'''", 3))) {
                in_doc = !in_doc;
                k += 2;
                word = 0;
                continue;
            }
            if (!in_doc && !in_block && !in_comment &&
                ((p[k] == '#' && c->has_def) || (p[k] == '/' && k + 1 < le && p[k + 1] == '/')))
                in_comment = 1;
            if (!in_doc && !in_comment && !in_block && p[k] == '/' && k + 1 < le &&
                p[k + 1] == '*') {
                in_block = 1;
                k++;
                continue;
            }
            if (in_block && p[k] == '*' && k + 1 < le && p[k + 1] == '/') {
                in_block = 0;
                k++;
                word = 0;
                continue;
            }
            int inside = in_doc || in_comment || in_block;
            int letter = (p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' && p[k] <= 'Z');
            if (inside && letter && !word) {
                c->doc_words++;
                size_t e = k;
                while (e < le && ((p[e] >= 'a' && p[e] <= 'z') || (p[e] >= 'A' && p[e] <= 'Z')))
                    e++;
                /* a whole word: not glued to digits or underscores (identifiers) */
                int glued = (k > ls && (p[k - 1] == '_' || is_digit(p[k - 1]))) ||
                            (e < le && (p[e] == '_' || is_digit(p[e])));
                if (!glued && is_case_word(p + k, e - k)) c->cases++;
            }
            word = inside && letter;
        }
        ls = le + 1;
    }
    if (!c->has_def || last_end <= last_start) return;
    /* the last non-blank line: indented (inside a body), a docstring end, or an open block */
    const unsigned char *q = p + last_start;
    size_t n = last_end - last_start;
    while (n && (q[n - 1] == ' ' || q[n - 1] == '\t' || q[n - 1] == '\r'))
        n--;
    c->ends_in_code = in_doc || in_block || q[0] == ' ' || q[0] == '\t' ||
                      (n && (q[n - 1] == ':' || q[n - 1] == '{')) ||
                      (n >= 2 && q[n - 2] == '*' && q[n - 1] == '/');
}

void pred_features_text(const char *prompt, size_t len, int n_prompt_tokens, pred_features *out) {
    memset(out, 0, sizeof *out);
    out->n = PF_COUNT;
    if (!prompt) len = 0;
    word words[CUE_WORDS]; /* needs no clearing: only entries below n_kept are read */
    scan sc = {0};
    sc.w = words;
    scan *s = &sc;
    long counts[PF_COUNT] = {0};
    double target = 0, list_n = 0;
    {
        scan_text(prompt, len, s);
        match_cues(prompt, s->w, s->n_kept < PRED_CUE_HEAD_WORDS ? s->n_kept : PRED_CUE_HEAD_WORDS,
                   counts);
        read_length_requests(prompt, s->w,
                             s->n_kept < PRED_CUE_HEAD_WORDS ? s->n_kept : PRED_CUE_HEAD_WORDS,
                             &target, &list_n);
        if (s->n_kept > PRED_CUE_HEAD_WORDS) {
            match_cues(prompt, s->w + PRED_CUE_HEAD_WORDS, s->n_kept - PRED_CUE_HEAD_WORDS, counts);
            read_length_requests(prompt, s->w + PRED_CUE_HEAD_WORDS,
                                 s->n_kept - PRED_CUE_HEAD_WORDS, &target, &list_n);
        }
        for (int i = 0; i < s->n_kept; i++) {
            if (!s->w[i].sent_start) continue;
            if (word_in(prompt, &s->w[i], aux_verbs)) counts[PF_YES_NO]++;
            if (word_in(prompt, &s->w[i], imperatives)) counts[PF_IMPERATIVE]++;
        }
    }
    double tokens = n_prompt_tokens > 0 ? n_prompt_tokens : (double)(len + 3) / 4.0;
    float *v = out->v;
    for (int i = 0; i < PF_ENTROPY; i++)
        v[i] = (float)log1p((double)counts[i]);
    v[PF_LOG_PROMPT_TOKENS] = (float)log1p(tokens);
    {
        v[PF_LOG_LINES] = (float)log1p((double)s->lines);
        v[PF_QUESTIONS] = (float)log1p((double)s->questions);
        v[PF_SENTENCES] = (float)log1p((double)s->sentences);
        v[PF_ENUM_ITEMS] = (float)log1p((double)s->enum_items);
        v[PF_CLAUSES] = (float)log1p((double)(counts[PF_CLAUSES] + s->clause_marks));
        v[PF_CODE_PRESENT] = (float)log1p((double)(counts[PF_CODE_PRESENT] + s->code_sym));
        v[PF_NUMBERS] = (float)log1p((double)s->numbers);
        v[PF_MATHS] = (float)log1p((double)(counts[PF_MATHS] + s->maths_sym));
        v[PF_CONTEXT_BLOCK] = (float)log1p((double)s->context_bytes);
    }
    v[PF_LIST_N] = (float)log1p(list_n);
    v[PF_TARGET_WORDS] = (float)log1p(target);
    v[PF_TARGET_PRESENT] = target > 0 ? 1.0f : 0.0f;
    v[PF_TRANSFORM_X_LEN] = counts[PF_TRANSFORM_TASK] ? v[PF_LOG_PROMPT_TOKENS] : 0.0f;
    /* code to complete and word problems: the answer grows with what it must cover */
    v[PF_CODE_X_LEN] = s->code_sym + counts[PF_CODE_PRESENT] >= 3 ? v[PF_LOG_PROMPT_TOKENS] : 0.0f;
    v[PF_MATHS_X_LEN] = s->numbers >= 2 && counts[PF_MATHS] ? v[PF_LOG_PROMPT_TOKENS] : 0.0f;
    v[PF_ENDS_OPEN] = ends_open(prompt, len) ? 1.0f : 0.0f;
    /* code to complete (a signature + docstring): the body's length follows the specification */
    code_scan cs = {0};
    scan_code(prompt, len, &cs);
    v[PF_CODE_COMPLETION] = cs.has_def && cs.ends_in_code ? 1.0f : 0.0f;
    v[PF_DOC_WORDS] = (float)log1p((double)cs.doc_words);
    v[PF_DOCTESTS] = (float)log1p((double)cs.doctests);
    v[PF_COMPLETION_X_DOC] = v[PF_CODE_COMPLETION] > 0 ? v[PF_DOC_WORDS] : 0.0f;
    v[PF_COMPLETION_X_LEN] = v[PF_CODE_COMPLETION] > 0 ? v[PF_LOG_PROMPT_TOKENS] : 0.0f;
    if (v[PF_CODE_COMPLETION] > 0) {
        v[PF_COMPLETION_CASES] = (float)log1p((double)cs.cases);
        v[PF_GIVEN_CODE] = (float)log1p((double)cs.given);
        v[PF_N_PARAMS] = (float)log1p((double)cs.params);
    }
    /* register: long words mark formal, elaborate requests; lower-case starts, a lower-case
     * "i", a missing final punctuation mark and chat spellings mark casual chat */
    long letters = 0, n_w = 0, informal = counts[PF_INFORMAL];
    for (int i = 0; i < s->n_kept; i++) {
        const word *w = &s->w[i];
        if (w->has_digit || w->len > MAX_WORD_LEN) continue;
        letters += w->len;
        n_w++;
        if (w->len == 1 && prompt[w->off] == 'i') informal++;
    }
    v[PF_MEAN_WORD_LEN] = n_w ? (float)((double)letters / (double)n_w) : 0.0f;
    if (s->n_kept > 0 && prompt[s->w[0].off] >= 'a' && prompt[s->w[0].off] <= 'z') informal++;
    {
        size_t e = len;
        while (e && (prompt[e - 1] == ' ' || prompt[e - 1] == '\n' || prompt[e - 1] == '\r' ||
                     prompt[e - 1] == '\t'))
            e--;
        if (e && is_word_byte((unsigned char)prompt[e - 1]) && !v[PF_CODE_PRESENT]) informal++;
    }
    v[PF_INFORMAL] = (float)log1p((double)informal);
    /* In code to complete, the words are identifiers and a specification, not a request about the
     * answer's form: cue and register features read there are noise (a docstring's "return" or
     * "list" is no list request), so only size and code features speak for such a prompt. */
    if (v[PF_CODE_COMPLETION] > 0) {
        static const int keep[] = {PF_LOG_PROMPT_TOKENS, PF_LOG_LINES,       PF_SENTENCES,
                                   PF_CODE_PRESENT,      PF_LANG_MENTION,    PF_NUMBERS,
                                   PF_CONTEXT_BLOCK,     PF_CODE_X_LEN,      PF_ENDS_OPEN,
                                   PF_CODE_COMPLETION,   PF_DOC_WORDS,       PF_DOCTESTS,
                                   PF_COMPLETION_X_DOC,  PF_COMPLETION_X_LEN, PF_COMPLETION_CASES,
                                   PF_GIVEN_CODE,        PF_N_PARAMS};
        float kept[PF_COUNT];
        memcpy(kept, v, sizeof kept);
        for (int i = 0; i < PF_ENTROPY; i++)
            v[i] = 0;
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
            v[keep[i]] = kept[keep[i]];
    }
    v[PF_ENTROPY] = 0;
    out->has_entropy = 0;
}
