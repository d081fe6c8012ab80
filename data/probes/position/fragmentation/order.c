// Per 64 MiB chunk: read bandwidth and how its pages lie in guest-physical
// memory: share of next pages at +1, -1, other.
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t gib = argc>1?atol(argv[1]):8; int passes=3;
  size_t chunk=64ul<<20, n=(gib<<30)/chunk, pages=(gib<<30)/4096, ppc=chunk/4096;
  char *p=aligned_alloc(1<<21,n*chunk); memset(p,1,n*chunk);
  int fd=open("/proc/self/pagemap",O_RDONLY);
  uint64_t *pm=malloc(pages*8); pread(fd,pm,pages*8,((uintptr_t)p/4096)*8);
  for(size_t i=0;i<pages;i++) pm[i]&=(1ull<<55)-1;
  size_t per=chunk/sizeof(float); volatile float sink=0;
  double *bw=calloc(n,sizeof(double));
  for(int r=0;r<passes;r++) for(size_t c=0;c<n;c++){
    float *q=(float*)(p+c*chunk); double best=1e9;
    for(int k=0;k<3;k++){ double t0=now(); float s0=0,s1=0,s2=0,s3=0;
      for(size_t i=0;i<per;i+=4){s0+=q[i];s1+=q[i+1];s2+=q[i+2];s3+=q[i+3];}
      sink+=s0+s1+s2+s3; double t=now()-t0; if(t<best)best=t;}
    bw[c]+=chunk/best/1e9/passes;}
  for(size_t c=0;c<n;c++){ size_t up=0,down=0,same2m=0; for(size_t i=c*ppc;i+1<(c+1)*ppc;i++){ int64_t d=(int64_t)pm[i+1]-(int64_t)pm[i]; if(d==1)up++; else if(d==-1)down++; if((pm[i+1]>>9)==(pm[i]>>9))same2m++;}
    printf("%zu\t%.1f\t+1 %.2f\t-1 %.2f\tsame2M %.2f\n",c,bw[c],(double)up/ppc,(double)down/ppc,(double)same2m/ppc);}
  return 0;}
