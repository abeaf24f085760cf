# English dates as a clinic outside the United States reads them: "17 May 1980", never 05/17/1980, which a GP
# in Russia (or anywhere else) reads as the 5th of the 17th month. Times on the 24-hour clock, as in Russian.
# Input formats are Django's own (this module defines none): the browser's date fields send ISO dates.
DATE_FORMAT = "j F Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j F Y, H:i"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # Monday
