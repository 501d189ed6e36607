// The kernel cost per process of each way doctor's scan could read procfs, on this machine's
// /proc (start N sleepers first; bench/watch-scan.sh and docs/agent.md "Second round" say how
// the figures are used): open+read+close of stat (openat, openat2 with RESOLVE flags), of
// statm/status/comm, open+close alone, fstatat, stat through kept O_PATH pid directories,
// pread on kept stat descriptors, getdents64 with two buffer sizes. CPU from getrusage, per
// pass over all pids. Not a test.
//   cc -O2 -o /tmp/procfs-cost bench/procfs-cost.c && /tmp/procfs-cost 10
//   /tmp/procfs-cost floor 20     # the least any watch pass costs (see floor_mode)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <linux/openat2.h>
#include <time.h>
#include <sys/stat.h>
static int pids[100000]; static int np;
static double cpu(void){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_utime.tv_sec*1e3+r.ru_utime.tv_usec/1e3+r.ru_stime.tv_sec*1e3+r.ru_stime.tv_usec/1e3;}
static double sys_(void){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_stime.tv_sec*1e3+r.ru_stime.tv_usec/1e3;}
static char buf[4096];
static int cmp_double(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return x<y?-1:x>y;}
// `procfs-cost floor REPS`: what every watch pass must cost the kernel at the least — list
// the pids (getdents64, 64 KiB) and open, read and close each one's stat through a kept
// O_PATH directory of its main thread (<pid>/task/<pid>/), as doctor's scan does — and
// nothing else: no parsing, no maps. Prints the median and the lowest CPU ms of REPS passes.
static int floor_mode(int reps){
  struct rlimit rl={200000,200000}; setrlimit(RLIMIT_NOFILE,&rl);
  int proc=open("/proc",O_RDONLY|O_DIRECTORY);
  static int kept[4194305]; static char b[65536]; char path[64];
  struct d64 { unsigned long long ino; long long off; unsigned short reclen; unsigned char type; char name[]; };
  int fd=openat(proc,".",O_RDONLY|O_DIRECTORY),n,np=0;
  while((n=syscall(SYS_getdents64,fd,b,sizeof b))>0)
    for(int o=0;o<n;){struct d64*e=(void*)(b+o);o+=e->reclen;int p=atoi(e->name);
      if(p>0&&p<4194305){snprintf(path,64,"%d/task/%d",p,p);int d=openat(proc,path,O_PATH|O_DIRECTORY|O_CLOEXEC);kept[p]=d<0?0:d;np++;}}
  close(fd);
  double t[1000]; if(reps>1000)reps=1000;
  for(int r=0;r<reps;r++){
    double c0=cpu();
    fd=openat(proc,".",O_RDONLY|O_DIRECTORY);
    while((n=syscall(SYS_getdents64,fd,b,sizeof b))>0)
      for(int o=0;o<n;){struct d64*e=(void*)(b+o);o+=e->reclen;int p=atoi(e->name);
        if(p>0&&p<4194305&&kept[p]){int f=openat(kept[p],"stat",O_RDONLY|O_CLOEXEC|O_NOFOLLOW);if(f>=0){read(f,buf,1024);close(f);}}}
    close(fd);
    t[r]=cpu()-c0;
  }
  qsort(t,reps,sizeof t[0],cmp_double);
  printf("floor: %.1f ms CPU per pass (median of %d; lowest %.1f); %d pids\n",t[reps/2],reps,t[0],np);
  return 0;
}
int main(int argc,char**argv){
  if(argc>1&&!strcmp(argv[1],"floor"))return floor_mode(argc>2?atoi(argv[2]):20);
  int reps=argc>1?atoi(argv[1]):10;
  int proc=open("/proc",O_RDONLY|O_DIRECTORY);
  DIR*d=opendir("/proc");struct dirent*e;
  while((e=readdir(d))){int p=atoi(e->d_name);if(p>0)pids[np++]=p;}
  closedir(d);
  printf("%d pids, %d reps\n",np,reps);
  char path[64];
  #define BENCH(name,body) { double c0=cpu(),s0=sys_(); for(int r=0;r<reps;r++){body} double c=cpu()-c0,s=sys_()-s0; printf("%-40s %7.2f ms/pass (sys %6.2f) %5.2f us/proc\n",name,c/reps,s/reps,c/reps*1000/np);}
  BENCH("openat(proc,PID/stat)+read+close",for(int i=0;i<np;i++){snprintf(path,64,"%d/stat",pids[i]);int fd=openat(proc,path,O_RDONLY|O_CLOEXEC);if(fd<0)continue;read(fd,buf,1024);close(fd);})
  struct open_how how={.flags=O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK,.resolve=RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS};
  BENCH("openat2(proc,PID/stat,BENEATH)+read+close",for(int i=0;i<np;i++){snprintf(path,64,"%d/stat",pids[i]);int fd=syscall(SYS_openat2,proc,path,&how,sizeof how);if(fd<0)continue;read(fd,buf,1024);close(fd);})
  BENCH("openat(proc,PID/stat)+close (no read)",for(int i=0;i<np;i++){snprintf(path,64,"%d/stat",pids[i]);int fd=openat(proc,path,O_RDONLY|O_CLOEXEC);if(fd<0)continue;close(fd);})
  BENCH("openat(proc,PID/statm)+read+close",for(int i=0;i<np;i++){snprintf(path,64,"%d/statm",pids[i]);int fd=openat(proc,path,O_RDONLY|O_CLOEXEC);if(fd<0)continue;read(fd,buf,1024);close(fd);})
  BENCH("openat(proc,PID/status)+read+close",for(int i=0;i<np;i++){snprintf(path,64,"%d/status",pids[i]);int fd=openat(proc,path,O_RDONLY|O_CLOEXEC);if(fd<0)continue;read(fd,buf,4096);close(fd);})
  BENCH("openat(proc,PID/comm)+read+close",for(int i=0;i<np;i++){snprintf(path,64,"%d/comm",pids[i]);int fd=openat(proc,path,O_RDONLY|O_CLOEXEC);if(fd<0)continue;read(fd,buf,64);close(fd);})
  BENCH("fstatat(proc,PID) only",for(int i=0;i<np;i++){snprintf(path,64,"%d",pids[i]);struct stat st;fstatat(proc,path,&st,0);})
  // kept dir fds
  struct rlimit rl={200000,200000}; setrlimit(RLIMIT_NOFILE,&rl);
  static int dfd[100000];
  for(int i=0;i<np;i++){snprintf(path,64,"%d",pids[i]);dfd[i]=openat(proc,path,O_PATH|O_DIRECTORY|O_CLOEXEC);}
  BENCH("kept O_PATH dir: openat(d,stat)+read+close",for(int i=0;i<np;i++){int fd=openat(dfd[i],"stat",O_RDONLY|O_CLOEXEC);if(fd<0)continue;read(fd,buf,1024);close(fd);})
  BENCH("kept O_PATH dir: openat2(d,stat,BENEATH)+read+close",for(int i=0;i<np;i++){int fd=syscall(SYS_openat2,dfd[i],"stat",&how,sizeof how);if(fd<0)continue;read(fd,buf,1024);close(fd);})
  BENCH("openat2(proc,PID/stat,BENEATH)+read+close",for(int i=0;i<np;i++){snprintf(path,64,"%d/stat",pids[i]);int fd=syscall(SYS_openat2,proc,path,&how,sizeof how);if(fd<0)continue;read(fd,buf,1024);close(fd);})
  for(int i=0;i<np;i++)close(dfd[i]);
  static int sfd[100000];
  for(int i=0;i<np;i++){snprintf(path,64,"%d/stat",pids[i]);sfd[i]=openat(proc,path,O_RDONLY|O_CLOEXEC);}
  BENCH("kept stat fd: pread",for(int i=0;i<np;i++){if(sfd[i]<0)continue;pread(sfd[i],buf,1024,0);})
  for(int i=0;i<np;i++)close(sfd[i]);
  BENCH("getdents64 /proc 32K buf",{int fd=openat(proc,".",O_RDONLY|O_DIRECTORY);char b[32768];while(syscall(SYS_getdents64,fd,b,sizeof b)>0);close(fd);})
  BENCH("getdents64 /proc 256K buf",{int fd=openat(proc,".",O_RDONLY|O_DIRECTORY);static char b[262144];while(syscall(SYS_getdents64,fd,b,sizeof b)>0);close(fd);})
  BENCH("getpid x np (syscall floor)",for(int i=0;i<np;i++){syscall(SYS_getppid);})
  return 0;
}
