#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H

#include <string.h>
#include <curl/curl.h>

/// Why these exist: curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot
/// call; each wrapper passes one argument of one fixed type.
static inline CURLcode CCurl_setLong(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CCurl_setString(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CCurl_setPointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode CCurl_setSlist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*CCurl_DataCallback)(char *data, size_t size, size_t count, void *context);

static inline CURLcode CCurl_setCallback(CURL *handle, CURLoption option, CCurl_DataCallback callback) {
    return curl_easy_setopt(handle, option, callback);
}

/// Sets a PEM blob option (CA bundle, client certificate or key) from memory; curl copies it.
static inline CURLcode CCurl_setBlob(CURL *handle, CURLoption option, const void *data, size_t length) {
    struct curl_blob blob;
    blob.data = (void *)data;
    blob.len = length;
    blob.flags = CURL_BLOB_COPY;
    return curl_easy_setopt(handle, option, &blob);
}

static inline long CCurl_responseCode(CURL *handle) {
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static inline long CCurl_infoLong(CURL *handle, CURLINFO info) {
    long value = 0;
    curl_easy_getinfo(handle, info, &value);
    return value;
}

/// Copies the value of the first `name:value` entry of certificate `index`'s CURLINFO_CERTINFO
/// (set CURLOPT_CERTINFO before the transfer) whose name is `name` into `out`; 1 if found.
static inline int CCurl_certificateField(CURL *handle, int index, const char *name, char *out, size_t length) {
    struct curl_certinfo *info = NULL;
    if (length == 0 || curl_easy_getinfo(handle, CURLINFO_CERTINFO, &info) != CURLE_OK || info == NULL) return 0;
    if (index < 0 || index >= info->num_of_certs) return 0;
    size_t nameLength = strlen(name);
    for (struct curl_slist *entry = info->certinfo[index]; entry != NULL; entry = entry->next) {
        if (strncmp(entry->data, name, nameLength) == 0 && entry->data[nameLength] == ':') {
            strncpy(out, entry->data + nameLength + 1, length - 1);
            out[length - 1] = 0;
            return 1;
        }
    }
    return 0;
}

#endif
