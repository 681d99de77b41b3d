#define SOCKIT_LOCALEDIR "/usr/local/share/locale"
