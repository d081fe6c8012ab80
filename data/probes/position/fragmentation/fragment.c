// Leaves MiB of free memory as isolated 4 KiB pages: maps 2×MiB, touches
// it, unmaps every other page and holds the rest until killed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
int main(int argc,char**argv){
  size_t bytes=(size_t)atol(argv[1])<<21;
  char*p=mmap(0,bytes,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  madvise(p,bytes,MADV_NOHUGEPAGE); memset(p,1,bytes);
  for(size_t o=0;o<bytes;o+=8192) madvise(p+o,4096,MADV_DONTNEED);
  printf("fragmented %zu MiB\n",bytes>>21); fflush(stdout); pause(); return 0;}
