/* An ICU common-data library with no entries, in place of Qt Core's libicudata (32 MB, 8.9 MB compressed).
 *
 * Qt Core links ICU (libicuuc, libicui18n, libicudata); the page itself is drawn by Chromium inside Qt WebEngine,
 * which carries its own ICU and its own data (resources/icudtl.dat). What Qt Core would use ICU's data for
 * (collation, legacy text codecs, ICU time zones) the kiosk's window never asks for; ICU answers such calls with
 * an error, which Qt handles. build.spec compiles this with -DICU_SYMBOL=icudt<version>_dat and the soname of the
 * library it replaces; KIOSK_KEEP_QT_ICU_DATA=1 keeps the real one. The layout is ICU's "CmnD" common data
 * header (MappedData + UDataInfo, padded to 32 bytes) followed by a table of contents with zero entries.
 */
#include <stdint.h>

struct empty_common_data {
    uint16_t header_size;
    uint8_t magic1, magic2;
    uint16_t info_size, reserved_word;
    uint8_t big_endian, charset_family, sizeof_uchar, reserved_byte;
    uint8_t data_format[4], format_version[4], data_version[4];
    uint8_t padding[8];
    uint32_t count;
};

__attribute__((visibility("default"), aligned(16))) const struct empty_common_data ICU_SYMBOL = {
    32, 0xda, 0x27, 20, 0, 0, 0, 2, 0, {'C', 'm', 'n', 'D'}, {1, 0, 0, 0}, {0, 0, 0, 0}, {0}, 0};
