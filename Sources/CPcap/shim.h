#ifndef SMTPSCOPE_CPCAP_SHIM_H
#define SMTPSCOPE_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
