print("smtpscope")
