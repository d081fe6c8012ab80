// Holds the machine's free memory that lies in blocks smaller than 2 MiB
// (from /proc/buddyinfo) plus a margin, touched, until killed: later
// allocations of other processes then come from whole 2 MiB+ blocks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc,char**argv){
  size_t mib=atol(argv[1]); char*p=malloc(mib<<20); memset(p,1,mib<<20);
  printf("ballast %zu MiB held\n",mib); fflush(stdout); pause(); return 0;}
