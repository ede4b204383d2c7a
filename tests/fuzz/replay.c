// SPDX-License-Identifier: MIT
//
// replay.c -- runs a fuzz target over every file of its committed corpus,
// without libFuzzer, so ctest can replay the corpus under valgrind on every
// build.  Fails when a directory holds no input: a replay of nothing would
// pass without testing anything.

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        return -1;
    }

    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *p = realloc(data, cap);
            if (p == NULL) {
                free(data);
                fclose(fp);
                return -1;
            }
            data = p;
        }
        size_t n = fread(data + len, 1, cap - len, fp);
        if (n == 0)
            break;
        len += n;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

int
main(int argc, char **argv)
{
    long inputs = 0;

    for (int i = 1; i < argc; i++) {
        DIR *dir = opendir(argv[i]);
        if (dir == NULL) {
            perror(argv[i]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (replay_file(path) != 0) {
                closedir(dir);
                return 1;
            }
            inputs++;
        }
        closedir(dir);
    }
    printf("replayed %ld inputs\n", inputs);
    return inputs > 0 ? 0 : 1;
}
